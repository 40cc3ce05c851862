"""The shop's rules: plain async functions over an AsyncSession, no NoneBot imports."""
