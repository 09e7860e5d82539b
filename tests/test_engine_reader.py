import gzip
import io
import zipfile

import pyarrow as pa
import pytest

from tests.engine_helpers import learner_error
from workers.engine import DEFAULT_LIMITS, Limits, ScoringError, read_submission

COLUMNS = ["id", "prediction"]


def read(path, limits=DEFAULT_LIMITS, columns=COLUMNS, numeric=("prediction",)):
    return read_submission(path, columns=list(columns), numeric_columns=list(numeric), limits=limits)


def write(tmp_path, data: bytes, name="upload.bin"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def fails(path, limits=DEFAULT_LIMITS, **kwargs) -> str:
    with pytest.raises(ScoringError) as excinfo:
        read(path, limits, **kwargs)
    return learner_error(excinfo)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


CSV = b"id,prediction\n007,0.5\nA1,1\n"


def test_reads_ids_as_strings_and_predictions_as_floats(tmp_path):
    table = read(write(tmp_path, CSV))
    assert table.column("id").to_pylist() == ["007", "A1"]
    assert table.column("prediction").type == pa.float64()


def test_columns_may_come_in_any_order(tmp_path):
    table = read(write(tmp_path, b"prediction,id\n0.5,x\n"))
    assert table.column("id").to_pylist() == ["x"]


def test_format_is_detected_by_content_not_name(tmp_path):
    table = read(write(tmp_path, gzip.compress(CSV), name="looks_plain.csv"))
    assert table.num_rows == 2


def test_reads_gzip(tmp_path):
    assert read(write(tmp_path, gzip.compress(CSV), name="s.csv.gz")).num_rows == 2


def test_reads_zip_with_one_csv_ignoring_macos_metadata(tmp_path):
    data = zip_bytes({"sub.csv": CSV, "__MACOSX/._sub.csv": b"\x00\x05junk"})
    assert read(write(tmp_path, data, name="s.zip")).num_rows == 2


def test_accepts_bom_and_crlf(tmp_path):
    table = read(write(tmp_path, b"\xef\xbb\xbfid,prediction\r\n1,0.5\r\n2,0.25\r\n"))
    assert table.column("id").to_pylist() == ["1", "2"]
    assert table.column("prediction").to_pylist() == [0.5, 0.25]


def test_rejects_empty_file(tmp_path):
    assert "empty" in fails(write(tmp_path, b""))


@pytest.mark.parametrize("data", [b"id,prediction\n", b"id,prediction"])
def test_rejects_header_only(tmp_path, data):
    assert "header but no data rows" in fails(write(tmp_path, data))


def test_rejects_wrong_delimiter(tmp_path):
    message = fails(write(tmp_path, b"id;prediction\n1;0.5\n"))
    assert "header has 1 column 'id;prediction'" in message
    assert "comma-separated" in message


def test_names_missing_and_extra_columns(tmp_path):
    message = fails(write(tmp_path, b"id,pred,extra\n1,0.5,1\n"))
    assert "missing column(s) 'prediction'" in message
    assert "unexpected column(s) 'pred', 'extra'" in message


def test_hints_at_whitespace_in_column_names(tmp_path):
    message = fails(write(tmp_path, b"id, prediction\n1,0.5\n"))
    assert "' prediction' differs from 'prediction' by whitespace" in message


def test_rejects_duplicate_columns(tmp_path):
    assert "repeats column names: 'id'" in fails(write(tmp_path, b"id,id,prediction\n1,1,0.5\n"))


def test_rejects_latin1_in_body_mentioning_utf8(tmp_path):
    message = fails(write(tmp_path, "id,prediction\ncafé,0.5\n".encode("latin-1")))
    assert "UTF-8" in message and "'id'" in message


def test_rejects_latin1_in_header(tmp_path):
    message = fails(
        write(tmp_path, "id,prédiction\n1,0.5\n".encode("latin-1")),
        columns=["id", "prédiction"],
        numeric=["prédiction"],
    )
    assert "UTF-8" in message


def test_rejects_utf16(tmp_path):
    assert "UTF-16" in fails(write(tmp_path, CSV.decode().encode("utf-16")))


def test_rejects_binary_garbage(tmp_path):
    assert "binary" in fails(write(tmp_path, bytes(range(256)) * 4))


def test_rejects_parquet_by_magic(tmp_path):
    assert "Parquet" in fails(write(tmp_path, b"PAR1" + b"\x00" * 100))


def test_non_numeric_prediction_names_column_value_and_row(tmp_path):
    message = fails(write(tmp_path, b"id,prediction\n1,0.5\n2,0.7\n3,abc\n"))
    assert "'prediction' must contain numbers" in message
    assert "'abc'" in message and "data row 3" in message


def test_row_with_too_many_fields(tmp_path):
    message = fails(write(tmp_path, b"id,prediction\n1,0.5\n2,0,7\n"))
    assert "3 fields" in message and "'2,0,7'" in message


def test_rejects_line_longer_than_limit(tmp_path):
    limits = Limits(max_line_bytes=64)
    data = b"id,prediction\n1,0.5\n" + b"2," + b"1" * 200 + b"\n3,0.5\n"
    assert "longer than 64 bytes" in fails(write(tmp_path, data), limits)


def test_rejects_header_longer_than_limit(tmp_path):
    limits = Limits(max_line_bytes=64)
    assert "Line 1 is longer than 64 bytes" in fails(write(tmp_path, b"x" * 500 + b"\n"), limits)


def test_rejects_file_over_size_limit(tmp_path):
    assert "largest allowed upload" in fails(write(tmp_path, CSV * 10), Limits(max_bytes=100))


def test_rejects_too_many_rows(tmp_path):
    data = b"id,prediction\n" + b"".join(b"%d,0.5\n" % i for i in range(20))
    assert "at most 10 are allowed" in fails(write(tmp_path, data), Limits(max_rows=10))


@pytest.mark.parametrize("compress", [None, "gzip", "zip"])
def test_rows_past_the_expected_count_are_refused_before_parsing(tmp_path, compress, monkeypatch):
    body = b"id,prediction\n" + b"".join(b"%d,0.5\n" % i for i in range(1000))
    data = {None: body, "gzip": gzip.compress(body), "zip": zip_bytes({"p.csv": body})}[compress]
    parsed = []
    monkeypatch.setattr("workers.engine.reader._parse", lambda *args: parsed.append(args))
    message = fails(write(tmp_path, data), Limits(expected_rows=10))
    assert message == "The file has more than 110 rows; expected 10, one per id."
    assert parsed == []


def test_the_row_margin_grows_with_the_expected_count(tmp_path):
    assert Limits(expected_rows=10).row_cap == 110
    assert Limits(expected_rows=1_000_000).row_cap == 1_010_000
    assert Limits(expected_rows=10**9).row_cap == DEFAULT_LIMITS.max_rows
    body = b"id,prediction\n" + b"".join(b"%d,0.5\n" % i for i in range(110))
    assert read(write(tmp_path, body), Limits(expected_rows=10)).num_rows == 110


def test_rejects_too_many_columns(tmp_path):
    header = ",".join(f"c{i}" for i in range(20)).encode()
    assert "at most 5 are allowed" in fails(
        write(tmp_path, header + b"\n" + b"1," * 19 + b"1\n"), Limits(max_columns=5)
    )


def test_gzip_bomb_stops_at_the_cap(tmp_path):
    # ~10 MB of zeros after the header compresses to about 10 KB.
    bomb = gzip.compress(b"id,prediction\n" + b"0" * (10 * 1024 * 1024))
    assert len(bomb) < 100_000
    message = fails(write(tmp_path, bomb), Limits(max_decompressed_bytes=1024 * 1024))
    assert "decompressed size exceeds 1 MB" in message


def test_zip_bomb_stops_at_the_cap(tmp_path):
    bomb = zip_bytes({"sub.csv": b"id,prediction\n" + b"1,0.5\n" * 2_000_000})
    assert len(bomb) < 100_000
    message = fails(write(tmp_path, bomb), Limits(max_decompressed_bytes=1024 * 1024))
    assert "decompressed size exceeds 1 MB" in message


def test_truncated_gzip(tmp_path):
    data = gzip.compress(b"id,prediction\n" + b"".join(b"%d,0.5\n" % i for i in range(5000)))
    assert "truncated" in fails(write(tmp_path, data[: len(data) // 2]))


def test_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(CSV * 50))
    data[20:40] = b"\xff" * 20
    assert "gzip" in fails(write(tmp_path, bytes(data)))


def test_zip_with_two_files(tmp_path):
    message = fails(write(tmp_path, zip_bytes({"a.csv": CSV, "b.csv": CSV})))
    assert "exactly one CSV file; it contains 2 files ('a.csv', 'b.csv')" in message


def test_empty_zip(tmp_path):
    assert "it contains 0 files" in fails(write(tmp_path, zip_bytes({})))


def test_zip_with_directory_and_file(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("folder/", b"")
        zf.writestr("folder/a.csv", CSV)
        zf.writestr("folder/b.csv", CSV)
    assert "1 folders" in fails(write(tmp_path, buffer.getvalue()))


@pytest.mark.parametrize("name", ["../evil.csv", "/etc/evil.csv", "a/../../evil.csv", "..\\evil.csv"])
def test_zip_path_traversal(tmp_path, name):
    assert "unsafe path" in fails(write(tmp_path, zip_bytes({name: CSV})))


def test_encrypted_zip(tmp_path):
    data = bytearray(zip_bytes({"sub.csv": CSV}))
    # zipfile cannot encrypt, so set the "encrypted" flag bit in both headers by hand.
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + flag_offset] |= 0x1
    assert "password-protected" in fails(write(tmp_path, bytes(data)))


def test_gzip_inside_zip(tmp_path):
    assert "compressed" in fails(write(tmp_path, zip_bytes({"a.csv.gz": gzip.compress(CSV)})))


def test_truncated_zip(tmp_path):
    data = zip_bytes({"sub.csv": CSV * 100})
    assert "zip" in fails(write(tmp_path, data[:60]))


def test_missing_file(tmp_path):
    assert "could not be opened" in fails(tmp_path / "nope.csv")
