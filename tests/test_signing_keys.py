"""Signing key rotation: the key file as a key set, replicas sharing it, and ``nentang keys``.

Everything runs on real files in ``tmp_path``. Time is a clock the test moves by hand, so a
key's retirement and the services' reload throttling are checked without sleeping.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet as JoseKeySet
from joserfc.jwk import RSAKey

from app.core.problems import Problem
from app.identity.tokens import (
    RELOAD_INTERVAL_SECONDS,
    RETIRE_MARGIN_SECONDS,
    SigningKeyError,
    TokenService,
    format_time,
    load_or_create_keys,
    read_keys,
    rotate_keys,
)
from tests.platform import Platform, fetch_token

ISSUER = "http://nentang.test"
TTL = 600
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


class Clock:
    """A wall clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "signing-key.pem"


def service(path: Path, clock: Clock) -> TokenService:
    return TokenService(path, ISSUER, TTL, now=clock)


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    kid: str = header["kid"]
    return kid


def signed_by(key: RSAKey, kid: str, clock: Clock, lifetime: int = 3600) -> str:
    """A token that passes every check but the key's: long-lived, so expiry plays no part."""
    now = int(clock())
    claims = {"iss": ISSUER, "aud": "nentang-api", "sub": "someone", "iat": now,
              "exp": now + lifetime, "jti": secrets.token_urlsafe(8)}
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, key,
                      algorithms=["RS256"])


def refused(tokens: TokenService, token: str) -> str:
    with pytest.raises(Problem) as caught:
        tokens.verify(token)
    problem = caught.value
    assert problem.status == 401 and problem.code == "invalid-token"
    assert 'error="invalid_token"' in problem.headers["WWW-Authenticate"]
    assert problem.detail
    return problem.detail


def published_kids(tokens: TokenService) -> list[str]:
    keys = tokens.jwks()["keys"]
    for key in keys:
        assert key["use"] == "sig" and key["alg"] == "RS256" and key["kty"] == "RSA"
        assert not PRIVATE_MEMBERS & key.keys(), "no private key material"
    return [key["kid"] for key in keys]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the key file -----------------------------------------------------------------------------


def test_a_new_key_file_is_a_key_set_made_once(key_file: Path, clock: Clock) -> None:
    tokens = service(key_file, clock)
    assert mode(key_file) == 0o600
    document = json.loads(key_file.read_text())
    assert document["format"] == "nentang-signing-keys/1"
    [entry] = document["keys"]
    assert entry["kid"] == tokens.kid == tokens.key.thumbprint()
    assert entry["created_at"] == format_time(clock()) and entry["retire_after"] is None
    assert entry.keys() >= PRIVATE_MEMBERS
    assert published_kids(tokens) == [tokens.kid]
    assert service(key_file, clock).kid == tokens.kid, "a restart keeps the key"


def test_processes_starting_together_share_one_key(key_file: Path) -> None:
    start = threading.Barrier(8)
    kids: list[str] = []

    def boot() -> None:
        start.wait()
        kids.append(load_or_create_keys(key_file).active.kid)

    threads = [threading.Thread(target=boot) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8 and len(set(kids)) == 1
    assert read_keys(key_file).active.kid == kids[0]
    assert mode(key_file) == 0o600


def test_a_legacy_pem_file_loads_and_is_upgraded_on_rotation(key_file: Path,
                                                             clock: Clock) -> None:
    legacy = RSAKey.generate_key(2048, private=True)
    key_file.parent.mkdir()
    key_file.write_bytes(legacy.as_pem(private=True))
    key_file.chmod(0o600)

    tokens = service(key_file, clock)
    assert tokens.keys.legacy_pem
    assert tokens.kid == legacy.thumbprint(), "the kid earlier versions put in tokens"
    assert published_kids(tokens) == [legacy.thumbprint()]
    old_token = tokens.issue("someone", {})
    assert kid_of(old_token) == legacy.thumbprint()
    assert tokens.verify(old_token)["sub"] == "someone"

    clock.advance(30)
    rotation = tokens.rotate()
    assert rotation.upgraded and not rotation.pruned
    assert [key.kid for key in rotation.retiring] == [legacy.thumbprint()]
    assert mode(key_file) == 0o600
    document = json.loads(key_file.read_text())
    entries = {entry["kid"]: entry for entry in document["keys"]}
    assert entries.keys() == {rotation.new.kid, legacy.thumbprint()}
    assert entries[rotation.new.kid]["retire_after"] is None
    assert entries[legacy.thumbprint()]["retire_after"] == format_time(
        clock() + TTL + RETIRE_MARGIN_SECONDS)

    assert not tokens.keys.legacy_pem
    assert sorted(published_kids(tokens)) == sorted([rotation.new.kid, legacy.thumbprint()])
    new_token = tokens.issue("someone", {})
    assert kid_of(new_token) == rotation.new.kid == tokens.kid
    assert tokens.verify(old_token)["sub"] == "someone", "the old key still verifies"
    assert tokens.verify(new_token)["sub"] == "someone"


def test_a_corrupt_key_file_stops_the_start(key_file: Path, clock: Clock) -> None:
    key_file.parent.mkdir()
    key_file.write_text('{"keys": "nope"}')
    with pytest.raises(SigningKeyError, match="is corrupt"):
        service(key_file, clock)
    key_file.write_text("")
    with pytest.raises(SigningKeyError, match="is empty"):
        service(key_file, clock)


def test_a_file_corrupted_at_run_time_is_ignored(key_file: Path, clock: Clock) -> None:
    tokens = service(key_file, clock)
    kid = tokens.kid
    token = tokens.issue("someone", {})
    key_file.write_text("garbage")
    clock.advance(RELOAD_INTERVAL_SECONDS)
    assert kid_of(tokens.issue("someone", {})) == kid, "keeps signing with the keys it has"
    assert tokens.reloads == 1
    assert tokens.verify(token)["sub"] == "someone"


# --- rotation and retirement ------------------------------------------------------------------


def test_a_retired_key_leaves_the_jwks_and_its_tokens_are_refused(key_file: Path,
                                                                  clock: Clock) -> None:
    tokens = service(key_file, clock)
    old = tokens.keys.active
    seen = signed_by(old.key, old.kid, clock)  # verified (and cached) before the rotation
    assert tokens.verify(seen)["sub"] == "someone"

    first = tokens.rotate()
    assert first.retiring[0].retire_after == clock() + TTL + RETIRE_MARGIN_SECONDS
    clock.advance(TTL + RETIRE_MARGIN_SECONDS - 1)
    assert old.kid in published_kids(tokens)
    assert tokens.verify(seen)["sub"] == "someone"
    assert tokens.verify(signed_by(old.key, old.kid, clock))["sub"] == "someone"

    clock.advance(1)
    assert published_kids(tokens) == [first.new.kid]
    assert "retired" in refused(tokens, seen), "the cache does not outlive the key"
    assert "retired" in refused(tokens, signed_by(old.key, old.kid, clock))
    retired = tokens.keys.find(old.kid)
    assert retired and retired.status(clock()) == "retired (removed at the next rotation)"

    second = tokens.rotate()
    assert [key.kid for key in second.pruned] == [old.kid]
    assert [key.kid for key in second.retiring] == [first.new.kid]
    assert {key.kid for key in read_keys(key_file).keys} == {first.new.kid, second.new.kid}
    assert tokens.keys.find(old.kid) is None
    replica = service(key_file, clock)
    assert "unknown key" in refused(replica, signed_by(old.key, old.kid, clock))
    assert "unknown key" in refused(tokens, signed_by(old.key, old.kid, clock))


def test_rotation_keeps_retiring_keys_until_their_time(key_file: Path, clock: Clock) -> None:
    tokens = service(key_file, clock)
    first = tokens.kid
    second = tokens.rotate().new.kid
    clock.advance(60)
    third = tokens.rotate()
    assert not third.pruned
    assert [key.kid for key in third.retiring] == [second]
    assert [key.kid for key in tokens.keys.keys] == [third.new.kid, second, first]
    assert published_kids(tokens) == [third.new.kid, second, first]
    status = {key.kid: key.status(clock()) for key in tokens.keys.keys}
    assert status[third.new.kid] == "active"
    assert status[first].startswith("retiring until ")
    assert status[second] == f"retiring until {format_time(clock() + TTL + 60)}"


def test_a_staged_rotation_publishes_first_and_signs_later(key_file: Path,
                                                         clock: Clock) -> None:
    """A replica whose copy of the file is not updated yet (a Kubernetes Secret reaches pods
    a minute or two late) still verifies every token issued during the hand-over."""
    tokens = service(key_file, clock)
    old = tokens.kid
    stale_copy = key_file.with_name("stale.json")
    stale_copy.write_bytes(key_file.read_bytes())
    stale_copy.chmod(0o600)
    stale = service(stale_copy, clock)

    rotation = tokens.rotate(activate_in=180)
    assert rotation.new.sign_from == clock() + 180
    assert rotation.retiring[0].retire_after == clock() + 180 + TTL + RETIRE_MARGIN_SECONDS
    assert sorted(published_kids(tokens)) == sorted([old, rotation.new.kid])
    during = tokens.issue("someone", {})
    assert kid_of(during) == old, "the new key does not sign before its time"
    assert stale.verify(during)["sub"] == "someone"
    assert tokens.verify(signed_by(rotation.new.key, rotation.new.kid, clock))

    clock.advance(90)  # the Secret reaches the stale replica's pod
    stale_copy.write_bytes(key_file.read_bytes())
    clock.advance(90)
    after = tokens.issue("someone", {})
    assert kid_of(after) == rotation.new.kid
    assert stale.verify(after)["sub"] == "someone"
    assert stale.kid == rotation.new.kid, "the other replica switches at the same moment"
    assert stale.verify(during)["sub"] == "someone", "the old key verifies a lifetime more"
    clock.advance(TTL + RETIRE_MARGIN_SECONDS)
    assert "retired" in refused(tokens, during)
    assert read_keys(key_file).find(rotation.new.kid).sign_from == rotation.new.sign_from


# --- replicas sharing the file ----------------------------------------------------------------


def test_a_replica_reloads_for_a_token_with_an_unknown_kid(key_file: Path,
                                                           clock: Clock) -> None:
    first, second = service(key_file, clock), service(key_file, clock)
    assert first.kid == second.kid
    old_token = first.issue("someone", {})

    rotation = first.rotate()
    token = first.issue("someone", {})
    assert kid_of(token) == rotation.new.kid != kid_of(old_token)
    assert second.reloads == 0
    assert second.verify(token)["sub"] == "someone"
    assert second.reloads == 1
    assert second.kid == rotation.new.kid, "and signs with the new key from now on"
    assert second.verify(old_token)["sub"] == "someone"
    assert second.reloads == 1


def test_a_replica_notices_a_changed_file_when_signing(key_file: Path, clock: Clock) -> None:
    tokens = service(key_file, clock)
    old_kid = tokens.kid
    rotation = rotate_keys(key_file, TTL, now=clock)  # what `nentang keys rotate` does

    assert kid_of(tokens.issue("someone", {})) == old_kid, "the file is looked at every few s"
    assert tokens.reloads == 0
    clock.advance(RELOAD_INTERVAL_SECONDS)
    assert kid_of(tokens.issue("someone", {})) == rotation.new.kid
    assert tokens.reloads == 1
    assert sorted(published_kids(tokens)) == sorted([old_kid, rotation.new.kid])

    clock.advance(RELOAD_INTERVAL_SECONDS)
    tokens.issue("someone", {})
    published_kids(tokens)
    assert tokens.reloads == 1, "an unchanged file is not read again"

    rotate_keys(key_file, TTL, now=clock)
    clock.advance(RELOAD_INTERVAL_SECONDS)
    assert len(published_kids(tokens)) == 3 and tokens.reloads == 2, "jwks() looks too"


def test_made_up_kids_do_not_reread_the_file_each_time(key_file: Path, clock: Clock) -> None:
    tokens = service(key_file, clock)
    intruder = RSAKey.generate_key(2048, private=True)
    for _ in range(50):
        assert "unknown key" in refused(
            tokens, signed_by(intruder, secrets.token_urlsafe(32), clock))
    assert tokens.reloads == 1, "one look at the file, then no more for a while"

    clock.advance(RELOAD_INTERVAL_SECONDS - 1)
    refused(tokens, signed_by(intruder, "made-up", clock))
    assert tokens.reloads == 1
    clock.advance(1)
    for _ in range(10):
        refused(tokens, signed_by(intruder, secrets.token_urlsafe(32), clock))
    assert tokens.reloads == 2

    no_kid = jwt.encode({"alg": "RS256", "typ": "at+jwt"}, {"sub": "x"}, intruder,
                        algorithms=["RS256"])
    assert "names no signing key" in refused(tokens, no_kid)
    assert "names no signing key" in refused(tokens, "not.a.token")
    assert tokens.reloads == 2


# --- the command line -------------------------------------------------------------------------


def nentang(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "app.cli", *args], env=env,
                          text=True, capture_output=True, timeout=120, check=False)


@pytest.fixture
def embedded(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NENTANG_")}
    return {**env, "NENTANG_DATA_DIR": str(tmp_path / "data"), "NENTANG_LOG_JSON": "false"}


def cli_key_file(env: dict[str, str]) -> Path:
    return Path(env["NENTANG_DATA_DIR"]) / "signing-key.pem"


def listed(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["KID", "CREATED", "STATUS"]
    return {kid: (created, status.strip())
            for kid, created, status in (row.split(maxsplit=2) for row in rows)}


@pytest.mark.parametrize("command", [["keys"], ["keys", "rotate"], ["keys", "list"]],
                         ids=" ".join)
def test_keys_commands_have_help(command: list[str], embedded: dict[str, str]) -> None:
    result = nentang(embedded, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: nentang keys" in result.stdout


def test_cli_rotates_and_lists_keys(embedded: dict[str, str]) -> None:
    path = cli_key_file(embedded)
    for command in (["keys", "list"], ["keys", "rotate"]):
        missing = nentang(embedded, *command)
        assert missing.returncode == 1 and "There is no signing key file at" in missing.stderr
        assert "Traceback" not in missing.stderr
    assert not path.exists()

    legacy = RSAKey.generate_key(2048, private=True)
    path.parent.mkdir(parents=True)
    path.write_bytes(legacy.as_pem(private=True))
    path.chmod(0o600)
    before = nentang(embedded, "keys", "list")
    assert listed(before).keys() == {legacy.thumbprint()}
    assert listed(before)[legacy.thumbprint()][1] == "active"
    assert "single PEM key" in before.stderr

    rotated = nentang(embedded, "keys", "rotate", "--activate-in", "0")
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert report["retiring"] == [legacy.thumbprint()] and report["pruned"] == []
    assert "Rotating the token signing keys" in rotated.stderr
    assert "single PEM key; it is now a key set" in rotated.stderr
    assert f"New active key {report['kid']}" in rotated.stderr
    assert f"Previous key {legacy.thumbprint()} signs until now" in rotated.stderr
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "signing-key.pem", "signing-key.pem.lock"], "no temporary file left behind"

    after = listed(nentang(embedded, "keys", "list"))
    assert after[report["kid"]][1] == "active"
    assert after[legacy.thumbprint()][1].startswith("retiring until ")
    until = after[legacy.thumbprint()][1].removeprefix("retiring until ")
    retiring = read_keys(path).find(legacy.thumbprint())
    assert retiring and retiring.retire_after is not None
    retire_after = retiring.retire_after
    assert until == format_time(retire_after)
    assert time.time() + TTL < retire_after <= time.time() + TTL + RETIRE_MARGIN_SECONDS + 1

    tokens = TokenService(path, ISSUER, TTL)
    assert tokens.kid == report["kid"]
    assert sorted(published_kids(tokens)) == sorted([report["kid"], legacy.thumbprint()])


def test_cli_stages_a_rotation_so_every_replica_holds_the_key_before_it_signs(
        embedded: dict[str, str]) -> None:
    path = cli_key_file(embedded)
    old = load_or_create_keys(path).active.kid
    rotated = nentang(embedded, "keys", "rotate", "--activate-in", "180")
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert f"New key {report['kid']} is published and verifies now" in rotated.stderr
    assert f"signs new tokens from {report['signs_from']} (in 180 s)" in rotated.stderr
    listing = listed(nentang(embedded, "keys", "list"))
    assert listing[report["kid"]][1] == f"published; signs from {report['signs_from']}"
    assert listing[old][1].startswith("active until the next key signs, then retiring until")
    tokens = TokenService(path, ISSUER, TTL)
    assert tokens.kid == old and sorted(published_kids(tokens)) == sorted([old, report["kid"]])


def test_cli_refuses_a_corrupt_key_file(embedded: dict[str, str]) -> None:
    path = cli_key_file(embedded)
    path.parent.mkdir(parents=True)
    path.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    for command in (["keys", "list"], ["keys", "rotate"], ["serve", "--port", "0"]):
        result = nentang(embedded, *command)
        assert result.returncode == 1, (command, result.stderr)
        assert f"The signing key file {path} is corrupt" in result.stderr
        assert "Traceback" not in result.stderr
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----\nnot a key")


def test_cli_reports_a_key_file_it_cannot_write(embedded: dict[str, str]) -> None:
    path = cli_key_file(embedded)
    kid = load_or_create_keys(path).active.kid
    original = path.read_bytes()
    # A zero file-size limit makes every write fail, whoever runs the test (root included).
    result = nentang(embedded, "keys", "rotate",
                     prefix=("sh", "-c", 'ulimit -f 0 && exec "$@"', "sh"))
    assert result.returncode == 1, result.stderr
    assert f"Cannot write the signing key file {path}" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == original and read_keys(path).active.kid == kid
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "signing-key.pem", "signing-key.pem.lock"], "the temporary file is removed"


# --- through the running service --------------------------------------------------------------


@pytest.fixture
def restored_keys(app: Any) -> Iterator[TokenService]:
    """The app's token service; its key file is put back afterwards, as other tests expect
    the one key they started with."""
    tokens: TokenService = app.state.tokens
    original = tokens.key_file.read_bytes()
    try:
        yield tokens
    finally:
        tokens.key_file.write_bytes(original)
        tokens.reload()


async def test_rotation_in_the_running_service(platform: Platform, client: httpx.AsyncClient,
                                               restored_keys: TokenService) -> None:
    tokens = restored_keys
    admin = platform.admin
    old = await fetch_token(client, admin.client_id, admin.client_secret)
    old_kid = kid_of(old)
    assert old_kid == tokens.kid

    rotation = tokens.rotate()
    assert [key.kid for key in rotation.retiring] == [old_kid]
    still = await client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {old}"})
    assert still.status_code == 200, still.text

    new = await fetch_token(client, admin.client_id, admin.client_secret)
    assert kid_of(new) == rotation.new.kid != old_kid
    fresh = await client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {new}"})
    assert fresh.status_code == 200, fresh.text

    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, rotation.new.kid}
    assert not any(PRIVATE_MEMBERS & key.keys() for key in jwks["keys"])
    for token in (old, new):  # what a third party holding only the JWKS can check
        decoded = jwt.decode(token, JoseKeySet.import_key_set(jwks), algorithms=["RS256"])
        assert decoded.claims["sub"]
