"""Work a country repeats, done once: the site folders nested in one another found by their parents (tree.find_sites),
held to testing every pair on randomized folder trees."""

import random

from bench.disclosure import declaration as decl
from bench.disclosure import tree
from bench.disclosure.leaves import DisclosureError


def _pairwise_outer(sites):
    """find_sites' plain form: every pair of site folders tested, the first outer one in path order named."""
    for folder in sites:
        outer = [f for f in sites if f != folder and tree._inside(folder, f)]
        if outer:
            return f"{folder}: a site folder inside site folder {outer[0]}"
    return None


def test_a_site_folder_inside_another_is_named_as_testing_every_pair_names_it(tmp_path):
    rng = random.Random(11)
    names = ["a", "b", "ab", "a b", "z", "a.b", "a-1"]
    for trial in range(40):
        root = tmp_path / f"t{trial}"
        folders = set()
        for _ in range(rng.randrange(1, 9)):
            depth = rng.randrange(1, 4)
            folders.add(root.joinpath(*(rng.choice(names) for _ in range(depth))))
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "site.toml").write_text("x = 1\n")
            (folder / f"site.toml{decl.SIGNATURE_SUFFIX}").write_text("{}")
        expected = _pairwise_outer(sorted(folders))
        try:
            found = tree.find_sites(root)
            got = None
        except DisclosureError as exc:
            got = str(exc)
            found = None
        assert got == expected, (sorted(folders), got, expected)
        if found is not None:
            assert [s.folder for s in found] == sorted(folders)
