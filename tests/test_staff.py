"""bot/staff.py: password hashes at the configured argon2 cost (the accounts, scopes and
logins themselves are exercised through the console in tests/test_console.py)."""

from __future__ import annotations

from bot.config import ConsoleConfig
from bot.staff import _verify, dummy_hash, hash_password, needs_rehash, use_password_cost

CHEAP = ConsoleConfig(password_time_cost=1, password_parallelism=1, password_memory_kib=8)


def test_new_hashes_follow_the_configured_cost_and_others_are_rehashed() -> None:
    try:
        use_password_cost(CHEAP)
        cheap = hash_password("correct horse")
        assert cheap.startswith("$argon2id$") and "$m=8,t=1,p=1$" in cheap
        assert "$m=8,t=1,p=1$" in dummy_hash()  # an unknown user costs what a known one does
        assert not needs_rehash(cheap)
        assert _verify(cheap, "correct horse") and not _verify(cheap, "wrong horse")
        use_password_cost(ConsoleConfig())  # the shipped cost
        assert "$m=65536,t=3,p=4$" in dummy_hash()
        assert needs_rehash(cheap)  # the next login stores a hash at the shipped cost
        assert _verify(cheap, "correct horse")  # old hashes keep verifying meanwhile
    finally:
        use_password_cost(CHEAP)
