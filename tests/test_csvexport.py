from competitions.csvexport import safe_cell


def test_text_that_a_spreadsheet_would_run_is_neutralised():
    for text in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text


def test_numbers_and_plain_text_are_unchanged():
    for value in ("-0.12500", "0.9", "team = best", 3, -1.5, None, ""):
        assert safe_cell(value) == value


def test_objects_are_checked_by_the_text_they_are_written_as():
    class Named:
        def __str__(self) -> str:
            return '=HYPERLINK("http://evil.example","x")'

    assert safe_cell(Named()) == '\'=HYPERLINK("http://evil.example","x")'
