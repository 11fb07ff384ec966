"""broker/scrub.py: any run of 8 characters of a key, in any case, is hidden; nothing else."""

from tradectl.broker.scrub import scrub

KEY, SECRET = "PKTESTKEY0000000000", "testsecret0000000000000000000000000000000"


def test_a_key_whole_cut_short_or_upper_cased_is_hidden() -> None:
    assert scrub(f"bad key {KEY}!", (KEY, SECRET)) == "bad key ***!"
    assert scrub(f"secret={SECRET.upper()}", (KEY, SECRET)) == "secret=***"
    assert scrub(f"...was {SECRET[:12]}", (KEY, SECRET)) == "...was ***"
    assert scrub(f"{KEY[5:14]} and {KEY[:7]}", (KEY,)) == f"*** and {KEY[:7]}"  # 7: too short


def test_other_text_is_left_alone() -> None:
    text = "insufficient buying power — İstanbul ß"
    assert scrub(text, (KEY, SECRET)) == text
    assert scrub("", (KEY,)) == "" and scrub("abc", ()) == "abc"
