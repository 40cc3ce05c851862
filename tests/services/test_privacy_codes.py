"""services.privacy (what groups may see) and services.codes (order and ticket numbers)."""

from __future__ import annotations

import pytest

from services import codes
from services.codes import ALPHABET, CODE_LENGTH, looks_like_code, new_code, normalise_code
from services.privacy import city_of, mask_name, mask_phone, mask_phones_in

# --- phones ------------------------------------------------------------------------------


def test_mask_phone_keeps_three_and_four() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(" 13812345678 ") == "138****5678"


def test_mask_phone_hides_the_middle_of_a_landline() -> None:
    masked = mask_phone("0571-88886666")
    assert masked == "057****6666"
    assert "8888" not in masked


@pytest.mark.parametrize("short", ["", "123", "123456"])
def test_mask_phone_masks_short_values_whole(short: str) -> None:
    assert mask_phone(short) == "****"


def test_mask_name() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("李") == "李*"
    assert mask_name("") == ""


# --- cities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "city"),
    [
        ("浙江省杭州市西湖区文三路 100 号 3 单元 502", "浙江省杭州市"),
        ("北京市朝阳区建国路 88 号 SOHO 现代城", "北京市"),
        ("北京朝阳区建国路 88 号", "北京市"),
        ("上海市浦东新区世纪大道 100 号", "上海市"),
        ("天津市和平区南京路 1 号", "天津市"),
        ("重庆市渝中区解放碑 8 号", "重庆市"),
        ("广西壮族自治区南宁市青秀区民族大道 1 号", "广西壮族自治区南宁市"),
        ("新疆维吾尔自治区乌鲁木齐市天山区 1 号", "新疆维吾尔自治区乌鲁木齐市"),
        ("湖北省恩施土家族苗族自治州恩施市舞阳大街 1 号", "湖北省恩施土家族苗族自治州"),
        ("江苏省苏州市昆山市前进路 9 号", "江苏省苏州市"),
        ("杭州市西湖区文三路 100 号", "杭州市"),
        ("  浙江省杭州市西湖区  ", "浙江省杭州市"),
    ],
)
def test_city_of_cuts_down_to_the_city(address: str, city: str) -> None:
    assert city_of(address) == city


def test_city_of_never_returns_the_street_when_no_city_is_named() -> None:
    result = city_of("西湖区文三路 100 号 3 单元")
    assert "文三路" not in result
    assert "100" not in result
    assert city_of("") == ""


@pytest.mark.parametrize(
    "address",
    [
        "杭州西湖区文三路华联超市3楼",
        "上城区解放路菜市场对面 5 号",
        "浙江省杭州西湖区文三路华联超市旁",
    ],
)
def test_city_of_does_not_leak_street_when_a_street_word_contains_shi(address: str) -> None:
    result = city_of(address)
    assert "路" not in result, result


# --- codes -------------------------------------------------------------------------------


def test_alphabet_avoids_look_alike_characters() -> None:
    for ch in "01OIL":
        assert ch not in ALPHABET
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert ALPHABET == ALPHABET.upper()


def test_new_code_length_and_alphabet() -> None:
    seen = set()
    for _ in range(500):
        code = new_code()
        assert len(code) == CODE_LENGTH == 10
        assert set(code) <= set(ALPHABET)
        assert looks_like_code(code)
        seen.add(code)
    assert len(seen) == 500  # 31^10 possibilities: a repeat here means a broken generator


def test_new_code_uses_the_whole_alphabet() -> None:
    used = set("".join(new_code() for _ in range(300)))
    assert used == set(ALPHABET)


def test_normalise_code_upper_cases_and_strips() -> None:
    assert normalise_code("  abcd23efgh ") == "ABCD23EFGH"
    assert normalise_code("ABCD23EFGH") == "ABCD23EFGH"


def test_looks_like_code() -> None:
    code = codes.new_code()
    assert looks_like_code(code.lower())
    assert looks_like_code(f" {code} ")
    assert not looks_like_code(code[:-1])
    assert not looks_like_code(code + "2")
    assert not looks_like_code("0" + code[1:])  # 0 is not in the alphabet
    assert not looks_like_code("12")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("到了打 13812345678", "到了打 138****5678"),
        ("电话+8613812345678", "电话138****5678"),
        ("电话 86 13812345678", "电话 138****5678"),
        ("138-1234-5678 或 138 1234 5678", "138****5678 或 138****5678"),
        ("全角１３８１２３４５６７８", "全角138****5678"),
        ("座机 0571-88886666，010 62345678", "座机 0571-****6666，010-****5678"),
        ("派件员 张师傅 15900001234 正在派送", "派件员 张师傅 159****1234 正在派送"),
        # Not phones: tracking and order numbers, amounts, dates.
        ("SF1381234567890 已揽收", "SF1381234567890 已揽收"),
        ("运单 YT13812345678 到达", "运单 YT13812345678 到达"),
        ("2026-11-23 10:00 金额 1999.00", "2026-11-23 10:00 金额 1999.00"),
        ("", ""),
    ],
)
def test_mask_phones_in(text: str, shown: str) -> None:
    assert mask_phones_in(text) == shown


# --- courier texts in groups -------------------------------------------------------------

# Realistic courier event texts: what a group may see of each, and what it must not.
COURIER_TEXTS = [
    (
        "派送至 四川省成都市武侯区天府大道北段1700号2栋3单元，收件人 孙悟空，电话 13912345678",
        None,
        "派件 · 成都市",
    ),
    ("【上海转运中心】已发出，下一站【成都转运中心】", None, "在途 · 上海市"),
    ("快件已签收，签收人：本人，如有疑问请联系派件员 张师傅 15900001234", None, "签收"),
    ("快件到达【杭州转运中心】", "in_transit", "在途 · 杭州"),
    ("【深圳市】顺丰速运 已收取快件", "picked_up", "揽收 · 深圳市"),
    ("您的快件已到达达州市通川区西外营业部", None, "在途 · 达州市"),
    ("已放入西湖区文三路华联超市丰巢柜，收件人电话 13800001111，取件码 123456", None, "派件"),
    (
        "快件已被 广西壮族自治区南宁市青秀区民族大道 88 号菜鸟驿站 代收，收件人 猪八戒",
        None,
        "签收 · 南宁市",
    ),
    ("[乌鲁木齐市]快件离开【乌鲁木齐转运中心】", None, "在途 · 乌鲁木齐市"),
    ("派件员正在派件，请保持电话畅通，准备签收", None, "派件"),
    ("快件已到达萍乡市安源区跃进北路 3 号，收件人 唐僧", "delivering", "派件 · 萍乡市"),
    ("收件人拒收，快件退回", None, "拒签"),
    ("已揽件", None, "揽收"),
    ("", None, "在途"),
]


@pytest.mark.parametrize(("text", "state", "shown"), COURIER_TEXTS)
def test_courier_text_for_group_keeps_the_state_and_the_city_only(
    text: str, state: str | None, shown: str
) -> None:
    from services.privacy import courier_text_for_group

    assert courier_text_for_group(text, state) == shown


@pytest.mark.parametrize(("text", "state", "_shown"), COURIER_TEXTS)
def test_courier_text_for_group_never_shows_a_name_an_address_or_a_phone(
    text: str, state: str | None, _shown: str
) -> None:
    from services.privacy import courier_text_for_group

    shown = courier_text_for_group(text, state)
    for secret in ("孙悟空", "猪八戒", "唐僧", "张师傅", "天府大道", "1700", "文三路", "超市"):
        assert secret not in shown
    for secret in ("139", "138", "159", "123456", "武侯区", "青秀区", "民族大道", "跃进北路"):
        assert secret not in shown
    assert len(shown) <= len("退签 · 乌鲁木齐市")


def test_courier_state_prefers_the_providers_state() -> None:
    from services.privacy import courier_state

    assert courier_state("快件已签收", "delivering") == "delivering"
    assert courier_state("快件已签收") == "signed"
    assert courier_state("到了") == "in_transit"
