import pytest

from nlp.normalize import clean, has_chinese, mask_personal, prepare, strip_urls


@pytest.mark.parametrize(("raw", "expected"), [
    ("我家社區門口的井蓋不見了", "我家社区门口的井盖不见了"),  # traditional → simplified
    ("ＡＢＣ１２３路灯", "ABC123路灯"),  # full-width letters and digits
    ("井\u200b盖\u202e丢了\ufeff", "井盖丢了"),  # zero-width and bidi controls
    ("路灯\x00\x07坏了", "路灯 坏了"),  # control characters
    ("  多个   空格\n\n换行 ", "多个 空格 换行"),
    ("，。！", "，。！"),  # Chinese punctuation stays for people to read
])
def test_clean(raw: str, expected: str) -> None:
    assert clean(raw) == expected


@pytest.mark.parametrize(("raw", "hidden", "shown"), [
    ("电话13812345678", "13812345678", "138****5678"),
    ("电话 +86 138-1234-5678", "1234", "138****5678"),
    ("座机0757-83381234", "83381234", "0757-****1234"),
    ("身份证440604199001011234", "19900101", "440604********1234"),
])
def test_personal_numbers_are_masked(raw: str, hidden: str, shown: str) -> None:
    masked = mask_personal(raw)
    assert hidden not in masked and shown in masked


def test_prepare_bounds_length_and_urls_are_strippable() -> None:
    assert len(prepare("路" * 10_000, max_chars=2000)) == 2000
    assert "http" not in strip_urls("看这里 https://example.com/x?y=1 井盖")
    assert not has_chinese("🙂🙂 abc") and has_chinese("abc井盖")
