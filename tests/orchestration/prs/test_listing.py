"""An input folder's files in sorted order: the scan, the spilled runs and their merge."""
import os
import random
import subprocess
import sys

from orchestration.prs.listing import merge_runs, sorted_listing
from tests.conftest import clean_env


def test_listing_is_sorted_skips_hidden_and_spills_big_folders_to_disk(tmp_path):
    names = [f"{n:05d}.txt" for n in range(500)]
    for name in reversed(names):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.txt").write_text("")
    (tmp_path / ".hidden").write_text("")
    (tmp_path / "sub" / "odd\nname.txt").write_text("")
    nested = [str(tmp_path / "sub" / "z.txt"), str(tmp_path / "sub" / "odd\nname.txt")]
    expected = sorted([str(tmp_path / n) for n in names] + nested)
    in_memory = [p for block in sorted_listing(tmp_path) for p in block]
    spilled = [p for block in sorted_listing(tmp_path, chunk=64, merge_bytes=100) for p in block]
    assert in_memory == spilled == expected


def test_merging_sorted_runs_a_round_at_a_time_gives_the_sorted_whole():
    rng = random.Random(12)
    for _ in range(300):
        names = [f"{rng.choice('ab')}{rng.randrange(10 ** rng.randint(1, 4))}"
                 for _ in range(rng.randint(0, 80))]
        runs = [sorted(run) for run in split(rng, names)]
        blocks = list(merge_runs([iter(split(rng, run)) for run in runs]))
        assert [name for block in blocks for name in block] == sorted(names)
        assert all(blocks)  # no empty block


def split(rng: random.Random, items: list[str]) -> list[list[str]]:
    """`items` cut at up to 6 random places (empty pieces included)."""
    cuts = sorted(rng.randint(0, len(items)) for _ in range(rng.randint(0, 6)))
    return [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)])]


def test_spilled_names_are_the_names_the_system_gave_whatever_the_file_system_encoding(tmp_path):
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    for name in (b"\xc3\xa9.txt", b"\xff.txt", b"a.txt"):  # é in UTF-8, a byte that is no UTF-8, ASCII
        os.close(os.open(os.path.join(folder, name), os.O_CREAT | os.O_WRONLY))
    code = "; ".join([
        "import os, sys", "from pathlib import Path", "from orchestration.prs.listing import sorted_listing",
        "listed = lambda **sizes: [p for b in sorted_listing(Path(sys.argv[1]), **sizes) for p in b]",
        "spilled = listed(chunk=1, merge_bytes=7)",
        "print(sys.getfilesystemencoding(), spilled == listed(), all(os.path.exists(p) for p in spilled))",
    ])
    for locale in ({"PYTHONUTF8": "0", "LC_ALL": "C"}, {"PYTHONUTF8": "1"}):
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "in")], capture_output=True,
                                text=True, env=clean_env(**locale), timeout=60)
        assert result.stdout.split()[1:] == ["True", "True"], result.stdout + result.stderr
