"""Order and ticket numbers: short, not sequential, not guessable, easy to type."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: customers read these codes aloud and retype them from screenshots.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 31^10 ≈ 8e14: guessing a live code is hopeless


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """Codes are typed case-insensitively."""
    return text.strip().upper()


def looks_like_code(text: str) -> bool:
    text = text.strip().upper()
    return len(text) == CODE_LENGTH and all(ch in ALPHABET for ch in text)
