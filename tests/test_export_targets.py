"""One table of export targets (snn_deploy.workflows.EXPORT_TARGETS) for the command line and the API, and
``loihi`` meaning one thing: an export target that is an explicit alias of ``loihi2``, never a hardware profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from snn_deploy.errors import UserError
from snn_deploy.exporters.formats.bundle import Bundle
from snn_deploy.graph import DEFAULT_PROFILE, LOIHI, LOIHI2, PROFILES, profile
from snn_deploy.workflows import BUNDLE_TARGETS, EXPORT_TARGETS, export_target


def test_loihi_is_an_alias_of_loihi2_and_no_profile():
    assert export_target("loihi").alias_of == "loihi2"
    assert export_target("loihi").profile == export_target("loihi2").profile == LOIHI2.name == DEFAULT_PROFILE
    assert "loihi" not in PROFILES and LOIHI.name == "loihi1"
    with pytest.raises(UserError, match="choose one of loihi1, loihi2"):
        profile("loihi")


def test_every_target_names_a_profile_and_a_writer_or_a_bundle():
    for name, target in EXPORT_TARGETS.items():
        assert target.name == name and target.profile in PROFILES
        assert target.bundle == (target.suffix == ".loihi")
        assert target.alias_of is None or EXPORT_TARGETS[target.alias_of].profile == target.profile
    assert BUNDLE_TARGETS == ("loihi", "loihi1", "loihi2")
    with pytest.raises(UserError, match="unknown export target 'loihi3'"):
        export_target("loihi3")


def test_the_command_line_offers_the_table():
    from snn_deploy.cli.deploy import TARGETS

    assert TARGETS == tuple(EXPORT_TARGETS)


@pytest.mark.parametrize(("recorded", "meant"), [("loihi1", LOIHI), ("loihi2", LOIHI2), ("loihi", LOIHI),
                                                  (None, LOIHI2)])
def test_a_bundle_knows_its_profile_old_manifests_included(recorded, meant):
    manifest = {} if recorded is None else {"target": recorded}
    assert Bundle(Path("b"), None, manifest).profile is meant  # type: ignore[arg-type]
