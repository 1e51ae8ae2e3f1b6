"""The policy loader: every kind of bad file is a PolicyError that names the file, the key
path and what was expected (zh first, then en); extends and its merge rules; operator
directories; the reason catalogue's checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hub.policy import (
    CATALOGUES_DIR,
    PROFILES_DIR,
    Channel,
    Level,
    PolicyError,
    PolicyLoader,
)
from hub.workdays import DayUnit, Period

HEAD = """schema = 1
name = "t"
version = "1"
extends = "base"
title = { zh = "测试", en = "Test" }
sources = ["test"]
"""


@pytest.fixture
def operator_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    return folder


def loader_for(folder: Path, catalogues: Path | None = None) -> PolicyLoader:
    dirs = [CATALOGUES_DIR] if catalogues is None else [CATALOGUES_DIR, catalogues]
    return PolicyLoader(profile_dirs=[PROFILES_DIR, folder], catalogue_dirs=dirs)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# (what is added to a valid child of base, error code, key path)
CASES = [
    ("colour = 1\n", "policy.unknown_key", "colour"),
    (
        "[deadlines.callback]\nwithn = '1 working day'\n",
        "policy.unknown_key",
        "deadlines.callback.withn",
    ),
    ("[deadline.callback]\nwithin = '1 working day'\n", "policy.unknown_key", "deadline"),
    ("[rating]\ninvite_window_seconds = '60'\n", "policy.type", "rating.invite_window_seconds"),
    ("[rating]\ninvite_window_seconds = true\n", "policy.type", "rating.invite_window_seconds"),
    ("[rating]\ninvite_window_seconds = 60.0\n", "policy.type", "rating.invite_window_seconds"),
    ("[rating]\ninvite_window_seconds = 3\n", "policy.range", "rating.invite_window_seconds"),
    ("[rating]\ninvite_window_seconds = 601\n", "policy.range", "rating.invite_window_seconds"),
    ("[rating]\nfollow_up_ratings = 2\n", "policy.range", "rating.follow_up_ratings"),
    (
        "[rating]\nbad_rating_requires_reason = 1\n",
        "policy.type",
        "rating.bad_rating_requires_reason",
    ),
    ("[rating]\nfollow_up_ratings = 0\n", "policy.conflict", "rating.follow_up_ratings"),
    ("[upload]\nmode = 'monthly'\n", "policy.conflict", "upload.mode"),
    ("[rating]\nsupplementary_window = 5\n", "policy.type", "rating.supplementary_window"),
    ("[rating]\nsupplementary_window = '5 days'\n", "policy.format", "rating.supplementary_window"),
    (
        "[rating]\nsupplementary_window = '0 working days'\n",
        "policy.range",
        "rating.supplementary_window",
    ),
    (
        "[rating.default]\nafter = '5 working days'\nlevel = 'satisfied'\n",
        "policy.default_level",
        "rating.default.level",
    ),
    (
        "[rating.default]\nafter = '5 working days'\nlevel = 'great'\n",
        "policy.choice",
        "rating.default.level",
    ),
    ("[rating.default]\nafter = '5 working days'\n", "policy.missing", "rating.default.level"),
    (
        "[deadlines.callback]\nwithin = '150 working days'\n",
        "policy.range",
        "deadlines.callback.within",
    ),
    ("[deadlines.callback]\nwithin = '15 days'\n", "policy.format", "deadlines.callback.within"),
    (
        "[deadlines.callback]\nwarn_before = '1 working day'\n",
        "policy.conflict",
        "deadlines.callback.warn_before",
    ),
    (
        "[deadlines.rectification]\nwarn_before = '3 natural days'\n",
        "policy.conflict",
        "deadlines.rectification.warn_before",
    ),
    (
        "[deadlines.report_form]\nwithin = '5 natural days'\n",
        "policy.missing",
        "deadlines.report_form.warn_before",
    ),
    ("[day_count]\nevent_day_cutoff = '17:00'\n", "policy.conflict", "day_count.event_day_cutoff"),
    (
        "[day_count]\ncount_event_day = true\nevent_day_cutoff = '25:00'\n",
        "policy.format",
        "day_count.event_day_cutoff",
    ),
    (
        "[supervision]\nannual_report_due = '02-30'\n",
        "policy.format",
        "supervision.annual_report_due",
    ),
    (
        "[supervision]\nrevisit_sample_percent = 120\n",
        "policy.range",
        "supervision.revisit_sample_percent",
    ),
    (
        "[supervision]\nreal_name_callback_target_percent = 0\n",
        "policy.range",
        "supervision.real_name_callback_target_percent",
    ),
    ("[upload]\nmode = 'weekly'\n", "policy.choice", "upload.mode"),
    ("[upload]\nfallback = 'realtime'\n", "policy.conflict", "upload.fallback"),
    ("[reasons]\ncatalogue = 'nope'\n", "policy.unknown_catalogue", "reasons.catalogue"),
    ("[reasons]\nversion = '2024.9'\n", "policy.catalogue_version", "reasons.version"),
    (
        "[levels.satisfaction]\norder = 'up'\nfirst_code = 1\n",
        "policy.choice",
        "levels.satisfaction.order",
    ),
    (
        "[levels.satisfaction]\norder = 'very_dissatisfied_first'\n",
        "policy.missing",
        "levels.satisfaction.first_code",
    ),
    (
        "[levels.Bad]\norder = 'very_satisfied_first'\nfirst_code = 1\n",
        "policy.format",
        "levels.Bad",
    ),
    ("[channels.pf]\npc = 1\nfax = 9\n", "policy.unknown_key", "channels.pf.fax"),
    ("[channels.pf]\npc = 1\nmobile = 1\n", "policy.duplicate_code", "channels.pf.mobile"),
    ("[channels.pf]\npc = 1\nmobile = '2'\n", "policy.type", "channels.pf.mobile"),
    ("[channels.pf]\npc = 1.5\n", "policy.type", "channels.pf.pc"),
    ("[channels.pf]\npc = 10000\n", "policy.range", "channels.pf.pc"),
    ("[channels]\npf = 1\n", "policy.type", "channels.pf"),
    (
        "[rating.default]\nafter = '5 working days'\nlevel = 'basically_satisfied'\n"
        "[channels.pf]\npc = 1\n",
        "policy.conflict",
        "channels.pf",
    ),
]


@pytest.mark.parametrize(("added", "code", "key"), CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_bad_settings_are_refused_naming_file_key_and_expectation(
    operator_dir: Path, added: str, code: str, key: str
) -> None:
    path = write(operator_dir, "t", HEAD + added)
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    error = caught.value
    assert (error.code, error.key) == (code, key)
    assert error.file == str(path)
    text = str(error)
    assert text.startswith(f"[{code}] {path}: {key}：")  # Chinese first …
    assert f" / {path}: {key}: " in text  # … then English
    assert error.zh and error.en and error.zh != error.en


@pytest.mark.parametrize(
    ("text", "code", "key"),
    [
        (HEAD.replace("schema = 1", "schema = 2"), "policy.schema", "schema"),
        (HEAD.replace("schema = 1\n", ""), "policy.missing", "schema"),
        (HEAD.replace('name = "t"', 'name = "u"'), "policy.name_mismatch", "name"),
        (HEAD.replace('version = "1"', 'version = "v 1"'), "policy.format", "version"),
        (
            HEAD.replace('extends = "base"', 'extends = "nowhere"'),
            "policy.unknown_profile",
            "extends",
        ),
        (HEAD.replace('sources = ["test"]', "sources = []"), "policy.range", "sources"),
        (HEAD.replace('sources = ["test"]', "sources = [1]"), "policy.type", "sources[0]"),
        (HEAD.replace(', en = "Test"', ""), "policy.missing", "title.en"),
        (HEAD + "abstract = true\n", "policy.abstract", "abstract"),
        (HEAD + "[rating\n", "policy.syntax", ""),
    ],
)
def test_bad_identity_and_files(operator_dir: Path, text: str, code: str, key: str) -> None:
    path = write(operator_dir, "t", text)
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    assert (caught.value.code, caught.value.key, caught.value.file) == (code, key, str(path))


def test_unknown_profile_names_the_available_ones() -> None:
    with pytest.raises(PolicyError) as caught:
        PolicyLoader().profile("zhangdian")
    error = caught.value
    assert error.code == "policy.unknown_profile"
    assert "'zhangdian'" in error.en and "ningbo" in error.en and "mangshi" in error.zh


def test_a_missing_value_names_the_whole_chain(operator_dir: Path) -> None:
    write(
        operator_dir,
        "t",
        HEAD.replace('extends = "base"\n', "") + "[day_count]\ncount_event_day = false\n",
    )
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    assert (caught.value.code, caught.value.key) == ("policy.missing", "day_count.roll_to_workday")
    write(operator_dir, "mid", HEAD.replace('"t"', '"mid"') + "abstract = true\n")
    write(operator_dir, "t", HEAD.replace('"base"', '"mid"') + "[deadlines]\ncallback = false\n")
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    error = caught.value
    assert (error.code, error.key) == ("policy.type", "deadlines.callback")


def test_an_inherited_bad_value_blames_the_file_that_holds_it(operator_dir: Path) -> None:
    mid = write(
        operator_dir,
        "mid",
        HEAD.replace('"t"', '"mid"') + "abstract = true\n[rating]\ninvite_window_seconds = 2\n",
    )
    write(operator_dir, "t", HEAD.replace('"base"', '"mid"'))
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    assert caught.value.file == str(mid)
    assert caught.value.key == "rating.invite_window_seconds"
    # an unknown key in the base is blamed on the base too
    write(operator_dir, "mid", HEAD.replace('"t"', '"mid"') + "abstract = true\n[ratings]\n")
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    assert (caught.value.file, caught.value.key) == (str(mid), "ratings")


def test_extends_cycles_and_depth(operator_dir: Path) -> None:
    write(operator_dir, "a", HEAD.replace('"t"', '"a"').replace('"base"', '"b"'))
    write(operator_dir, "b", HEAD.replace('"t"', '"b"').replace('"base"', '"a"'))
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("a")
    assert caught.value.code == "policy.extends_cycle"
    assert "a → b → a" in caught.value.en
    names = [f"d{i}" for i in range(10)]
    for child, parent in zip(names, [*names[1:], "base"], strict=True):
        write(
            operator_dir, child, HEAD.replace('"t"', f'"{child}"').replace('"base"', f'"{parent}"')
        )
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("d0")
    assert caught.value.code == "policy.extends_depth"


def test_directories_may_not_shadow_each_other(operator_dir: Path) -> None:
    shutil.copy(PROFILES_DIR / "ningbo.toml", operator_dir / "ningbo.toml")
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("ningbo")
    assert caught.value.code == "policy.duplicate_name"
    with pytest.raises(PolicyError) as caught:
        PolicyLoader(profile_dirs=[operator_dir / "missing"]).profile_names()
    assert caught.value.code == "policy.no_directory"
    (operator_dir / "ningbo.toml").unlink()
    write(operator_dir, "Bad Name", HEAD)
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile_names()
    assert caught.value.code == "policy.file_name"


# ----------------------------------------------------------------- merge semantics


def test_an_operator_profile_extending_a_shipped_one(operator_dir: Path) -> None:
    """The docs' example: a Dezhou-like city (rectification 5 working days, DOMAIN.md) that
    otherwise follows Shandong HRSS, with its own pf numbering."""
    write(
        operator_dir,
        "dezhou",
        HEAD.replace('"t"', '"dezhou"').replace('"base"', '"shandong-hrss"')
        + "[deadlines.rectification]\nwithin = '5 working days'\n"
        + "[deadlines.feedback]\nwithin = '5 working days'\nwarn_before = '1 working day'\n"
        + "[rating]\ninvite_window_seconds = 10\nsupplementary_window = false\n"
        + "[supervision]\nannual_report_due = false\n"
        + "[channels.pf]\npc = 1\nmobile = 2\nqr_code = 3\nhall_tablet = 4\n"
        + "hall_terminal = 5\nphone = 6\nsms = 7\nsystem_default = 8\n",
    )
    loader = loader_for(operator_dir)
    p = loader.profile("dezhou")
    assert p.lineage == (("dezhou", "1"), ("shandong-hrss", "2025.1"), ("base", "2025.1"))
    assert p.rectification.within == Period(5, DayUnit.WORKING_DAYS)
    # deadlines merge key by key: the inherited 3-day warning would now be refused …
    assert p.rectification.warn_before == Period(3, DayUnit.WORKING_DAYS)
    assert p.feedback.warn_before == Period(1, DayUnit.WORKING_DAYS)
    assert p.rating.invite_window_seconds == 10  # the commercial product's window
    assert p.rating.supplementary_window is None  # switched off with `false`
    assert p.supervision.annual_report_due is None
    assert p.supervision.revisit_sample_percent == 20  # inherited from shandong-hrss
    assert p.report_form is not None  # inherited
    # code maps are replaced whole: phone now has a code, system_default moved
    pf = p.channels("pf")
    assert pf.encode(Channel.PHONE) == 6 and pf.decode(8) is Channel.SYSTEM_DEFAULT
    assert len(pf.codes) == 8
    assert "dezhou" in loader.all_profiles()


def test_warn_before_must_stay_below_a_shortened_limit(operator_dir: Path) -> None:
    write(
        operator_dir,
        "t",
        HEAD + "[deadlines.rectification]\nwithin = '3 working days'\n",
    )
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    # the child shortened `within`: the contradiction is blamed on it, and names both
    assert caught.value.code == "policy.conflict"
    assert caught.value.key == "deadlines.rectification.within"
    assert caught.value.file.endswith("t.toml")
    assert "deadlines.rectification.warn_before" in caught.value.en


def test_a_partial_code_map_replaces_the_inherited_one(operator_dir: Path) -> None:
    write(operator_dir, "t", HEAD + "[channels.gbt39046]\npc = 'PC端'\n")
    p = loader_for(operator_dir).profile("t")
    assert dict(p.channels("gbt39046").codes) == {Channel.PC: "PC端"}


def test_a_missing_required_code_system(operator_dir: Path) -> None:
    text = (PROFILES_DIR / "base.toml").read_text(encoding="utf-8")
    text = text.replace('name = "base"', 'name = "t"').replace("abstract = true\n", "")
    text = text.replace("[levels.satisfaction]", "[levels.other]")
    write(operator_dir, "t", text)
    with pytest.raises(PolicyError) as caught:
        loader_for(operator_dir).profile("t")
    assert (caught.value.code, caught.value.key) == ("policy.missing", "levels.satisfaction")


def test_a_standalone_profile_without_extends(operator_dir: Path) -> None:
    text = (PROFILES_DIR / "base.toml").read_text(encoding="utf-8")
    text = text.replace('name = "base"', 'name = "t"').replace("abstract = true\n", "")
    write(operator_dir, "t", text)
    p = loader_for(operator_dir).profile("t")
    assert p.lineage == (("t", "2025.1"),)
    assert p.rating.default is None


# ----------------------------------------------------------------- the reason catalogue


def test_the_reference_catalogue() -> None:
    catalogue = PolicyLoader().catalogue("reference")
    assert [i.zh for i in catalogue.indicators] == [
        "服务态度",
        "服务效率",
        "办事流程",
        "服务规范",
        "服务质量",
        "办事指南",
    ]
    codes = [o.code for i in catalogue.indicators for o in i.options]
    assert codes == list(range(501, 501 + len(codes)))  # 5xx, in order, no gaps
    for level in Level:
        assert catalogue.options_for(level), level  # every level has options to show
    bad = {o.code for o in catalogue.options_for(Level.VERY_DISSATISFIED)}
    good = {o.code for o in catalogue.options_for(Level.VERY_SATISFIED)}
    assert not bad & good
    assert catalogue.option(501) is not None and catalogue.option(501).zh == "热情周到"  # type: ignore[union-attr]
    assert catalogue.option(999) is None
    assert catalogue.not_offered(Level.DISSATISFIED, [503, 501, 999]) == (501, 999)
    assert catalogue.not_offered(Level.SATISFIED, [501, 502]) == ()
    assert all(o.en and o.zh for i in catalogue.indicators for o in i.options)


CATALOGUE_HEAD = """schema = 1
name = "c"
version = "1"
title = { zh = "测试", en = "Test" }
"""
INDICATOR = """[[indicators]]
key = "a"
zh = "甲"
en = "A"
  [[indicators.options]]
  code = 501
  zh = "差"
  en = "Bad"
  levels = ["dissatisfied", "very_dissatisfied"]
"""


@pytest.mark.parametrize(
    ("text", "code", "key"),
    [
        (
            CATALOGUE_HEAD + INDICATOR + INDICATOR.replace('"a"', '"b"'),
            "policy.duplicate_code",
            "indicators[1].options[0].code",
        ),
        (
            CATALOGUE_HEAD + INDICATOR + INDICATOR.replace("501", "502"),
            "policy.duplicate",
            "indicators[1].key",
        ),
        (
            CATALOGUE_HEAD + INDICATOR.replace('"dissatisfied", ', '"unhappy", '),
            "policy.choice",
            "indicators[0].options[0].levels[0]",
        ),
        (
            CATALOGUE_HEAD + INDICATOR.replace('"dissatisfied", ', '"very_dissatisfied", '),
            "policy.duplicate",
            "indicators[0].options[0].levels[1]",
        ),
        (
            CATALOGUE_HEAD + INDICATOR.replace('"dissatisfied", ', ""),
            "policy.no_bad_reason",
            "indicators",
        ),
        (
            CATALOGUE_HEAD + INDICATOR.replace("501", "70000"),
            "policy.range",
            "indicators[0].options[0].code",
        ),
        (
            CATALOGUE_HEAD + INDICATOR.replace("501", '"501"'),
            "policy.type",
            "indicators[0].options[0].code",
        ),
        (
            CATALOGUE_HEAD + INDICATOR.replace('["dissatisfied", "very_dissatisfied"]', "[]"),
            "policy.missing",
            "indicators[0].options[0].levels",
        ),
        (
            CATALOGUE_HEAD + INDICATOR + '  colour = "red"\n',
            "policy.unknown_key",
            "indicators[0].options[0].colour",
        ),
        (CATALOGUE_HEAD + "indicators = []\n", "policy.missing", "indicators"),
        (CATALOGUE_HEAD + "indicators = [1]\n", "policy.type", "indicators[0]"),
        (CATALOGUE_HEAD.replace('"c"', '"d"') + INDICATOR, "policy.name_mismatch", "name"),
    ],
)
def test_bad_catalogues(tmp_path: Path, text: str, code: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        PolicyLoader(catalogue_dirs=[tmp_path]).catalogue("c")
    assert (caught.value.code, caught.value.key, caught.value.file) == (code, key, str(path))


def test_a_profile_with_its_own_catalogue(tmp_path: Path, operator_dir: Path) -> None:
    catalogues = tmp_path / "catalogues"
    catalogues.mkdir()
    (catalogues / "c.toml").write_text(CATALOGUE_HEAD + INDICATOR, encoding="utf-8")
    write(operator_dir, "t", HEAD + "[reasons]\ncatalogue = 'c'\nversion = '1'\n")
    p = loader_for(operator_dir, catalogues).profile("t")
    assert p.reasons.name == "c" and [
        o.code for o in p.reasons.options_for(Level.DISSATISFIED)
    ] == [501]


def test_every_shipped_profile_loads() -> None:
    assert sorted(PolicyLoader().all_profiles()) == [
        "guangdong-2019",
        "mangshi",
        "ningbo",
        "shandong-hrss",
    ]
