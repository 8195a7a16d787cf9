"""The leak scanner itself must find what it is meant to find, or its silence means nothing."""

from tests.fixtures.leaks import find_leaks, fingerprint


def test_finds_a_secret_inside_other_text():
    secret = "tok-3f9a7c1e5b2d"
    leaks = find_leaks([secret], [("a", "nothing"), ("b", f"header Bearer {secret}\n")])
    assert leaks == [("b", fingerprint(secret))]


def test_reports_each_source_and_never_the_value():
    secret = "p4ssw0rd-very-long"
    leaks = find_leaks([secret], [("x", secret), ("y", "..." + secret)])
    assert [source for source, _ in leaks] == ["x", "y"]
    assert all(secret not in fp for _, fp in leaks)


def test_clean_output_has_no_leaks():
    assert find_leaks(["abcdefgh12345"], [("x", "abcdefgh1234"), ("y", "")]) == []
