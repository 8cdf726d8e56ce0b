"""store.preview: bounded, safe previews of real files on disk."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest

from store.preview import (
    HEX_BYTES,
    MAX_READ,
    ImageError,
    decode_png,
    hex_dump,
    lexer_for,
    png_size,
    preview_file,
)


def make_png(width: int, height: int, pixel: tuple[int, int, int], *, colour: int = 2) -> bytes:
    """A real PNG, rows filtered with all five filter types in turn."""
    channels = {0: 1, 2: 3, 6: 4}[colour]
    value = {0: bytes(pixel[:1]), 2: bytes(pixel), 6: bytes(pixel) + b"\xff"}[colour]
    raw = bytearray()
    prev = bytes(width * channels)
    for y in range(height):
        line = value * width
        ftype = y % 5
        raw.append(ftype)
        for i, byte in enumerate(line):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) >> 1
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            raw.append((byte - pred) & 0xFF)
        prev = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def test_text_is_escaped_and_highlighted_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text("print('hi')\n\x1b[2J\x1b]52;c;aGk=\x07 [bold]x\n")
    result = preview_file(path)
    assert result.kind == "text" and result.lexer == "python"
    assert "\x1b" not in result.text and "\x07" not in result.text
    assert "\\e[2J" in result.text and "[bold]x" in result.text
    assert lexer_for("Dockerfile") == "docker" and lexer_for("x.unknown") == "text"


def test_big_text_reads_head_and_tail_only(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    line = "0123456789" * 9 + "\n"
    lines = 50_000
    path.write_text("FIRST\n" + line * lines + "LAST\n")
    size = path.stat().st_size
    result = preview_file(path)
    assert result.head_bytes + result.tail_bytes <= MAX_READ
    assert result.skipped_bytes == size - result.head_bytes - result.tail_bytes > 0
    assert result.text.startswith("FIRST") and result.tail_text.rstrip().endswith("LAST")


def test_log_is_read_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    path.write_text("".join(f"step {i}\n" for i in range(100_000)))
    result = preview_file(path)
    assert result.from_end and result.head_bytes == 0
    assert result.text.rstrip().endswith("step 99999")
    assert result.text.startswith("step ")  # cut at a line boundary


def test_json_pretty_and_truncated_json_falls_back(tmp_path: Path) -> None:
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"lr": 0.1, "layers": [1, 2]}))
    result = preview_file(good)
    assert result.kind == "structured" and result.lexer == "json"
    assert '\n  "lr": 0.1' in result.text
    bad = tmp_path / "metrics.json"
    bad.write_text('{"loss": 0.5, "acc": ')
    result = preview_file(bad)
    assert result.kind == "text"
    assert any("invalid JSON" in note for note in result.notes)


def test_json_is_shown_as_written_not_as_python_read_it(tmp_path: Path) -> None:
    """The preview dumped the parsed values: ``1e400`` showed as ``Infinity``,
    ``1.00000000000000000001`` as ``1.0``, a repeated key once (with the value of the
    last), and a valid 5,000-digit integer made the file 'invalid JSON (written mid-way?)'."""
    big = "1" * 5000
    config = tmp_path / "config.json"
    config.write_text(
        '{"lr": 1e400, "eps": 1.00000000000000000001, "seed": ' + big + ', "lr": 0.2,'
        ' "tags": [], "extra": {}, "kind": "\\u00e9"}'
    )
    result = preview_file(config)
    assert result.kind == "structured", result.notes
    assert '\n  "lr": 1e400,' in result.text and "Infinity" not in result.text
    assert '\n  "eps": 1.00000000000000000001,' in result.text
    assert f'\n  "seed": {big},' in result.text
    assert '\n  "lr": 0.2,' in result.text
    assert '\n  "tags": [],\n  "extra": {},' in result.text
    assert not any("invalid" in n.lower() for n in result.notes), result.notes
    (warning,) = result.warnings
    assert '"lr"' in warning and "repeated" in warning and warning in result.notes
    odd = tmp_path / "metrics.json"
    odd.write_text('{"loss": NaN}')
    result = preview_file(odd)
    assert result.kind == "structured" and '"loss": NaN' in result.text
    assert any("NaN" in w for w in result.warnings), result.warnings


def test_yaml_with_python_tags_and_toml(tmp_path: Path) -> None:
    hparams = tmp_path / "hparams.yaml"
    hparams.write_text("size: !!python/tuple [1, 2]\nname: x\n")
    result = preview_file(hparams)
    assert result.kind == "structured" and "!!python/tuple" in result.text
    broken = tmp_path / "bad.toml"
    broken.write_text("a = [1,\n")
    assert any("invalid TOML" in n for n in preview_file(broken).notes)


def test_a_config_too_deep_to_show_parsed_is_not_called_invalid(tmp_path: Path) -> None:
    """5,000-deep JSON is valid: it was shown as 'invalid JSON (written mid-way?)'."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    notes = preview_file(deep).notes
    assert any(n.startswith("JSON not shown parsed: ") for n in notes), notes
    assert not any("invalid" in n.lower() for n in notes)
    broken = tmp_path / "bad.yaml"
    broken.write_text("a: [1\n")
    (note,) = [n for n in preview_file(broken).notes if "YAML" in n]
    assert note.lower().count("invalid yaml") == 1, note


def test_csv_head_tail_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    rows = ["step,loss"] + [f"{i},{1 / (i + 1):.4f}" for i in range(200)] + ["200"]
    path.write_text("\n".join(rows) + "\n")
    result = preview_file(path)
    assert result.kind == "table" and result.header == ("step", "loss")
    assert result.rows[0] == ("0", "1.0000") and result.tail_rows[-1] == ("200",)
    assert result.rows_omitted == 201 - len(result.rows) - len(result.tail_rows)
    assert any("ragged" in n for n in result.notes)
    tsv = tmp_path / "data.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert preview_file(tsv).rows == (("1", "2"),)


def test_png_decodes_every_filter_and_colour_type(tmp_path: Path) -> None:
    for colour in (0, 2, 6):
        data = make_png(20, 10, (200, 30, 40), colour=colour)
        image = decode_png(data)
        assert (image.width, image.height) == (20, 10)
        expected = (200, 200, 200) if colour == 0 else (200, 30, 40)
        assert all(image.rows[y][3 * x : 3 * x + 3] == bytes(expected)
                   for y in range(10) for x in range(20))  # fmt: skip
    big = decode_png(make_png(400, 100, (1, 2, 3)), box=100)
    assert big.width <= 100 and big.source_size == (400, 100)
    path = tmp_path / "loss.png"
    path.write_bytes(make_png(8, 8, (0, 255, 0)))
    result = preview_file(path)
    assert result.kind == "image" and result.image is not None
    assert png_size(path.read_bytes()) == (8, 8)


def test_corrupt_png_is_described_not_raised(tmp_path: Path) -> None:
    data = make_png(16, 16, (1, 2, 3))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    result = preview_file(path)
    assert result.kind == "binary" and result.notes and result.hex_head
    with pytest.raises(ImageError):
        decode_png(b"not a png")


def test_model_files_are_inspected_never_loaded(tmp_path: Path) -> None:
    evil = tmp_path / "model.pkl"
    evil.write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    result = preview_file(evil)
    assert result.kind == "model"
    assert result.inspection.verdict == "dangerous"
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    good = tmp_path / "model.safetensors"
    good.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    result = preview_file(good)
    assert result.inspection.format == "safetensors" and result.inspection.verdict == "safe"


def test_binary_gets_a_bounded_hex_head(tmp_path: Path) -> None:
    path = tmp_path / "blob.dat"
    path.write_bytes(bytes(range(256)) * 100)
    result = preview_file(path)
    assert result.kind == "binary"
    assert len(result.hex_head.splitlines()) == HEX_BYTES // 16
    assert hex_dump(b"AB\x00") == "00000000  41 42 00" + " " * 39 + "  AB."


def test_hostile_tree_never_raises_or_hangs(hostile_tree: Path) -> None:
    run = hostile_tree / "run-a"
    kinds = {}
    for entry in os.scandir(os.fsencode(run)):
        result = preview_file(entry.path)
        kinds[os.fsdecode(entry.name)] = result
        assert "\x1b" not in result.text + "".join(result.notes)
    assert "FIFO" in kinds["pipe"].notes[0]
    assert kinds["sock"].kind == "special"
    assert "not followed" in kinds["outside"].notes[0]
    assert kinds["loop-a"].kind == "special"
    assert kinds["sparse.bin"].kind in ("model", "binary")
    assert kinds["sparse.bin"].size == 1 << 34
    assert kinds["metrics.csv"].kind == "table"
    assert preview_file(run / "does-not-exist").kind == "error"
    empty = run / "empty.txt"
    empty.write_bytes(b"")
    assert preview_file(empty).kind == "empty"


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything; the permission case needs an unprivileged user")
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    assert preview_file(path).kind == "error"


def test_a_large_table_says_what_it_did_not_read(tmp_path: Path) -> None:
    from tui.widgets.preview import render_preview

    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n" + "".join(f"{i},{1 / (i + 1):.6f}\n" for i in range(400_000)))
    result = preview_file(path)
    assert result.kind == "table" and result.skipped_bytes > 0
    sections = render_preview(result, name="metrics.csv", artifact=None, now=0, width=80, dark=True)
    notes = [str(s) for s in sections if str(s).startswith("large file")]
    assert len(notes) == 1
    assert "the middle " in notes[0] and "is not read" in notes[0]
    assert f"the first {len(result.rows)} and the last {len(result.tail_rows)} rows" in notes[0]


def test_a_big_one_line_json_is_re_indented_only_as_far_as_the_pane_shows(
    tmp_path: Path,
) -> None:
    """Re-indenting is a Python loop per value on the preview's worker: past the lines the
    pane shows (head, and the end of the tail) it is not done at all."""
    from store.preview import REINDENT_LINES, reindent_json

    assert reindent_json('{"a": [1, 2, 3]}', max_lines=4) == '{\n  "a": [\n    1\n…'
    assert reindent_json('{"a": [1, 2, 3]}', max_lines=40) == reindent_json('{"a": [1, 2, 3]}')
    big = tmp_path / "tokenizer.json"
    big.write_text(json.dumps({"vocab": {f"tok{i}": i for i in range(100_000)}}))
    result = preview_file(big)
    head, tail = result.text.split("\n"), result.tail_text.split("\n")
    assert len(head) == REINDENT_LINES and head[-1] == "…"
    assert head[:3] == ["{", '  "vocab": {', '    "tok0": 0,']
    assert len(tail) == REINDENT_LINES
    assert tail[-3:] == ['"tok99999": 99999', "}", "}"]  # a cut piece: nesting unknown
    numbers = [int(line.rpartition(": ")[2].rstrip(",")) for line in tail[:-3]]
    assert numbers == list(range(numbers[0], 99_999))  # the last lines, none lost


def test_a_big_one_line_json_is_shown_re_indented_head_and_tail(tmp_path: Path) -> None:
    from store.preview import reindent_json

    assert reindent_json('{"a": [1, {"b,}": "x\\"y"}], "c": "d') == (
        '{\n  "a": [\n    1,\n    {\n      "b,}": "x\\"y"\n    }\n  ],\n  "c": "d'
    )
    big = tmp_path / "tokenizer.json"
    big.write_text(json.dumps({"vocab": {f"tok{i}": i for i in range(100_000)}}))
    assert big.stat().st_size > MAX_READ
    result = preview_file(big)
    assert result.kind == "text" and result.lexer == "json"
    assert '    "tok1": 1,' in result.text.split("\n")[:6]
    assert result.tail_text.rstrip().endswith('"tok99999": 99999\n}\n}')
    assert max(len(line) for line in (result.text + result.tail_text).split("\n")) < 100
    assert any("re-indented" in note for note in result.notes)


def test_a_field_past_csvs_default_limit_is_read_as_csv(tmp_path: Path) -> None:
    """A field past csv's default size limit (131,072): the preview split lines at commas
    and said "4 rows" of a file of 3, first with no word that it was not read as CSV, then
    with one; now the limit is the text's length and the file is read as CSV."""
    path = tmp_path / "q.csv"
    path.write_text('a,b\n"' + "x" * 140_000 + '",1\n"p,q",2\n"multi\nline",3\n')
    result = preview_file(path)
    assert result.kind == "table" and result.warnings == ()
    assert "3 rows" in result.notes
    assert [row[1] for row in result.rows] == ["1", "2", "3"]
    assert result.rows[1][0] == "p,q"


def test_columns_past_the_shown_ones_are_counted_and_raggedness_seen(tmp_path: Path) -> None:
    """60 columns, a row of 55: cut to 50 first, the rows looked even and the other ten
    columns went unmentioned."""
    path = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(60))
    even = ",".join("1" for _ in range(60))
    short = ",".join("1" for _ in range(55))
    path.write_text(f"{header}\n{even}\n{short}\n")
    result = preview_file(path)
    assert len(result.header) == 50
    assert "60 columns: the first 50 shown" in result.notes
    assert any(w.startswith("ragged rows") for w in result.warnings)


def test_an_alias_bomb_is_not_called_malformed_and_deep_json_not_too_large(
    tmp_path: Path,
) -> None:
    """A YAML alias bomb is sound YAML past what the preview builds: it was "invalid YAML
    (written mid-way?)".  A small JSON nested too deeply was also "too large to parse"."""
    bomb = tmp_path / "config.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\n")
    result = preview_file(bomb)
    assert not any("written mid-way" in w for w in result.warnings), result.warnings
    assert any("not shown parsed" in n and "alias" in n for n in result.notes), result.notes
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    result = preview_file(deep)
    assert any("not shown parsed" in n for n in result.notes), result.notes
    assert not any("too large" in n for n in result.notes), result.notes


def test_utf16_text_shown_as_bytes_says_why(tmp_path: Path) -> None:
    """Notepad's "Unicode" and PowerShell's redirections write UTF-16: a hex dump with no
    word looked like a binary file."""
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffloss went down\n".encode("utf-16-le"))
    result = preview_file(path)
    assert result.kind == "binary"
    assert any("UTF-16" in note for note in result.notes), result.notes
