"""`golive evidence verify --from-prefect RUN_ID`: the head the run published on the Prefect server
(its final state message, else its evidence-head artifact) is the one the chain must end at."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cli.main import main
from golive.evidence import MANIFEST, EvidenceLedger
from golive.settings import SigningSettings
from golive.signing import generate_key


@pytest.fixture(scope="module", autouse=True)
def _inside_the_harness(prefect_harness):
    yield


@pytest.fixture
def signing(tmp_path) -> SigningSettings:
    private_path, public_path = generate_key(tmp_path / "keys")
    return SigningSettings(key_path=str(private_path), public_key_path=str(public_path))


def _go_live_like(folder: Path, signing: SigningSettings, head_in_message: bool) -> str:
    """A run that seals the folder in a sub-flow and then itself, as a go-live does; its id."""
    from prefect import flow
    from prefect.states import Completed

    from tasks.evidence import ReleaseFolder

    evidence = ReleaseFolder(path=str(folder), signing=signing)

    @flow(name="flight-check")
    def checks() -> None:
        evidence.record("preflight.json", {"decision": "GO"})
        evidence.seal("flight-check")

    @flow(name="go-live")
    def go_live():
        checks()
        evidence.record("stage_100.json", {"outcome": "proceed"})
        head = evidence.seal("go-live")["head"]
        return Completed(name="Live", message=f"v1.4.0 live; evidence head {head}" if head_in_message else "v1.4.0 live")

    return str(go_live(return_state=True).state_details.flow_run_id)


def _said(capsys) -> list[str]:
    # Prefect's own log handler may also write to stderr here; golive's lines are its own.
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("golive:")]


def _verify(folder: Path, signing: SigningSettings, *extra: str) -> int:
    return main(["evidence", "verify", str(folder), "--key", signing.public_key_path, *extra])


def test_the_head_in_the_runs_final_message_proves_nothing_was_cut(tmp_path, signing, capsys):
    folder = tmp_path / "v1.4.0"
    run_id = _go_live_like(folder, signing, head_in_message=True)
    head = EvidenceLedger(folder).chain()[-1]["head"]
    assert _verify(folder, signing, "--from-prefect", run_id) == 0
    assert f"chain head: {head} (expected the final state of flow run " in capsys.readouterr().out

    manifest = EvidenceLedger(folder).read_json(MANIFEST)
    manifest["chain"] = manifest["chain"][:1]  # the go-live's link cut, with its file
    EvidenceLedger(folder).write_json(MANIFEST, manifest)
    (folder / "stage_100.json").unlink()
    assert _verify(folder, signing) == 0  # invisible without the published head
    capsys.readouterr()
    assert _verify(folder, signing, "--from-prefect", run_id) == 1
    assert f"but {head} was published (it is not in the chain: links were cut or rewritten)" in capsys.readouterr().out


def test_without_a_head_in_the_message_the_runs_newest_artifact_is_read(tmp_path, signing, capsys):
    folder = tmp_path / "v1.4.0"
    run_id = _go_live_like(folder, signing, head_in_message=False)
    head = EvidenceLedger(folder).chain()[-1]["head"]
    assert _verify(folder, signing, "--from-prefect", run_id) == 0
    assert f"chain head: {head} (expected artifact evidence-head-v1-4-0 of flow run " in capsys.readouterr().out


def test_a_run_that_published_no_head_of_the_folder_is_one_line_and_exit_2(tmp_path, signing, capsys):
    folder = tmp_path / "v1.4.0"
    run_id = _go_live_like(folder, signing, head_in_message=False)
    other = tmp_path / "v2.0.0"
    folder.rename(other)
    assert _verify(other, signing, "--from-prefect", run_id) == 2
    [said] = _said(capsys)
    assert said.startswith("golive: --from-prefect: flow run ")
    assert said.endswith("published no head of v2.0.0: not in its state message, no artifact evidence-head-v2-0-0")


@pytest.mark.parametrize(("ref", "said"), [
    ("not-a-run", "golive: --from-prefect: 'not-a-run' is not a flow run id"),
    (str(uuid.UUID(int=7)), f"golive: --from-prefect: no flow run {uuid.UUID(int=7)} on this Prefect server"),
])
def test_an_unknown_run_is_one_line_and_exit_2(ref, said, tmp_path, signing, capsys):
    folder = tmp_path / "v1.4.0"
    EvidenceLedger(folder).write_json("preflight.json", {"decision": "GO"})
    assert _verify(folder, signing, "--from-prefect", ref) == 2
    assert _said(capsys) == [said]


def test_expect_head_and_from_prefect_are_one_or_the_other(tmp_path, signing):
    with pytest.raises(SystemExit) as exited:
        _verify(tmp_path, signing, "--expect-head", "0" * 64, "--from-prefect", str(uuid.UUID(int=7)))
    assert exited.value.code == 2
