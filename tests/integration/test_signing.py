"""Keys, detached JWS and JWKS (infrastructure/signing/), with real openssl keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import subprocess
from pathlib import Path

import pytest

from domain.errors import InvalidSignature, UnknownKey
from infrastructure.signing import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    Keyring,
    KeySet,
    SigningKey,
)

PAYLOAD = json.dumps(
    {"gid": "6f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a10", "markdown": "# Title\n\n" + "text " * 60},
    separators=(",", ":"),
).encode()

# RFC 7638 section 3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPe"
    "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_segment(header: dict) -> str:
    return b64(json.dumps(header, separators=(",", ":")).encode())


def ed25519_jws(signer: SigningKey, header: dict, payload: bytes) -> str:
    """A detached JWS with an arbitrary header, signed by signer's Ed25519 private key."""
    segment = header_segment(header)
    signature = signer.private_key.sign(f"{segment}.{b64(payload)}".encode())
    return f"{segment}..{b64(signature)}"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def assert_refused_as_invalid(keyset: KeySet, jws: object, payload: bytes = PAYLOAD) -> str:
    """Refused with InvalidSignature proper, not UnknownKey; returns the detail."""
    with pytest.raises(InvalidSignature) as refused:
        keyset.verify(jws, payload)  # type: ignore[arg-type]
    assert type(refused.value) is InvalidSignature
    return refused.value.detail


@pytest.fixture(scope="module")
def openssl_rsa_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openssl") / "key"
    openssl("genrsa", "-out", str(path), "4096")
    return path


@pytest.fixture(scope="module")
def rsa_key(openssl_rsa_pem: Path) -> SigningKey:
    return SigningKey.from_pem(openssl_rsa_pem.read_bytes())


@pytest.fixture
def ed_key() -> SigningKey:
    return SigningKey.generate("EdDSA")


@pytest.fixture
def ed_keyset(ed_key: SigningKey) -> KeySet:
    return KeySet([ed_key.public_jwk()])


# --- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_generated_key_signature_verifies_and_names_its_kid(alg: str) -> None:
    key = SigningKey.generate(alg)
    keyset = KeySet([key.public_jwk()])

    jws = key.sign(PAYLOAD)

    assert key.alg == alg
    assert keyset.verify(jws, PAYLOAD) == key.kid


def test_default_algorithm_is_one_of_the_accepted_algorithms() -> None:
    key = SigningKey.generate()

    assert DEFAULT_ALGORITHM in ALGORITHMS
    assert key.alg == DEFAULT_ALGORITHM


def test_openssl_genrsa_4096_key_signs_rs256_that_verifies(rsa_key: SigningKey) -> None:
    keyset = KeySet.from_jwks({"keys": [rsa_key.public_jwk()]})

    jws = rsa_key.sign(PAYLOAD)

    assert rsa_key.alg == "RS256"
    assert rsa_key.private_key.key_size == 4096
    assert len(unb64(jws.split(".")[2])) == 512
    assert keyset.verify(jws, PAYLOAD) == rsa_key.kid


def test_pkcs1_pem_from_openssl_loads_as_the_same_key(
    openssl_rsa_pem: Path, rsa_key: SigningKey, tmp_path: Path
) -> None:
    pkcs1 = tmp_path / "pkcs1.pem"
    openssl("rsa", "-in", str(openssl_rsa_pem), "-traditional", "-out", str(pkcs1))

    key = SigningKey.from_pem(pkcs1.read_bytes())

    assert pkcs1.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert key.kid == rsa_key.kid


def test_pem_round_trip_keeps_the_key_and_writes_pkcs8() -> None:
    key = SigningKey.generate("ES256")

    pem = key.to_pem()
    reloaded = SigningKey.from_pem(pem)

    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (reloaded.kid, reloaded.alg) == (key.kid, key.alg)
    assert KeySet([key.public_jwk()]).verify(reloaded.sign(PAYLOAD), PAYLOAD) == key.kid


def test_jws_is_detached_with_a_header_of_exactly_alg_and_kid(ed_key: SigningKey) -> None:
    jws = ed_key.sign(PAYLOAD)

    header, payload_part, signature = jws.split(".")

    assert payload_part == ""
    assert json.loads(unb64(header)) == {"alg": "EdDSA", "kid": ed_key.kid}
    assert "=" not in jws


def test_es256_signature_is_raw_r_and_s_not_der() -> None:
    key = SigningKey.generate("ES256")

    signature = unb64(key.sign(PAYLOAD).split(".")[2])

    assert len(signature) == 64


@pytest.mark.parametrize(
    ("alg", "members"),
    [("EdDSA", {"kty": "OKP", "crv": "Ed25519"}), ("ES256", {"kty": "EC", "crv": "P-256"})],
)
def test_public_jwk_has_kid_alg_use_and_no_private_member(alg: str, members: dict) -> None:
    key = SigningKey.generate(alg)

    jwk = key.public_jwk()

    assert members.items() <= jwk.items()
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (key.kid, alg, "sig")
    assert "d" not in jwk


def test_kid_is_the_rfc7638_thumbprint() -> None:
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256"}

    keyset = KeySet([jwk])

    assert keyset.kids == ["NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"]


def test_rsa_kid_is_the_thumbprint_of_n_and_e(rsa_key: SigningKey) -> None:
    jwk = rsa_key.public_jwk()
    members = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))

    expected = b64(hashlib.sha256(members.encode()).digest())

    assert rsa_key.kid == expected


# --- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_changing_any_payload_byte_breaks_the_signature(alg: str) -> None:
    key = SigningKey.generate(alg)
    keyset = KeySet([key.public_jwk()])
    payload = PAYLOAD[:200]
    jws = key.sign(payload)

    refused = 0
    for position in range(len(payload)):
        tampered = bytearray(payload)
        tampered[position] ^= 0x01
        with pytest.raises(InvalidSignature, match="does not match the payload"):
            keyset.verify(jws, bytes(tampered))
        refused += 1

    assert refused == len(payload)
    assert keyset.verify(jws, payload) == key.kid


def test_longer_or_empty_payload_is_refused(ed_key: SigningKey, ed_keyset: KeySet) -> None:
    jws = ed_key.sign(PAYLOAD)

    assert "does not match" in assert_refused_as_invalid(ed_keyset, jws, PAYLOAD + b" ")
    assert "does not match" in assert_refused_as_invalid(ed_keyset, jws, b"")


def test_signature_by_another_key_claiming_a_known_kid_is_refused(
    ed_key: SigningKey, ed_keyset: KeySet
) -> None:
    intruder = SigningKey.generate("EdDSA")

    forged = ed25519_jws(intruder, {"alg": "EdDSA", "kid": ed_key.kid}, PAYLOAD)

    assert "does not match" in assert_refused_as_invalid(ed_keyset, forged)


def test_signature_by_a_key_outside_the_set_is_an_unknown_key(ed_keyset: KeySet) -> None:
    outsider = SigningKey.generate("EdDSA")

    with pytest.raises(UnknownKey) as refused:
        ed_keyset.verify(outsider.sign(PAYLOAD), PAYLOAD)

    assert refused.value.extra["kid"] == outsider.kid


def test_header_naming_another_known_kid_is_refused(ed_key: SigningKey) -> None:
    other = SigningKey.generate("EdDSA")
    keyset = KeySet([ed_key.public_jwk(), other.public_jwk()])

    wrong_kid = ed25519_jws(ed_key, {"alg": "EdDSA", "kid": other.kid}, PAYLOAD)

    assert "does not match" in assert_refused_as_invalid(keyset, wrong_kid)
    assert keyset.verify(ed_key.sign(PAYLOAD), PAYLOAD) == ed_key.kid


@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_is_refused(ed_key: SigningKey, ed_keyset: KeySet, signature: str) -> None:
    unsigned = header_segment({"alg": "none", "kid": ed_key.kid}) + ".." + signature

    detail = assert_refused_as_invalid(ed_keyset, unsigned)

    assert "'none' is not accepted" in detail


def test_hs256_with_the_public_key_as_hmac_secret_is_refused(
    openssl_rsa_pem: Path, rsa_key: SigningKey, tmp_path: Path
) -> None:
    public_pem = tmp_path / "public.pem"
    openssl("pkey", "-in", str(openssl_rsa_pem), "-pubout", "-out", str(public_pem))
    keyset = KeySet([rsa_key.public_jwk()])
    secrets = [public_pem.read_bytes(), json.dumps(rsa_key.public_jwk()).encode()]

    for secret in secrets:
        segment = header_segment({"alg": "HS256", "kid": rsa_key.kid})
        mac = hmac.new(secret, f"{segment}.{b64(PAYLOAD)}".encode(), hashlib.sha256).digest()

        detail = assert_refused_as_invalid(keyset, f"{segment}..{b64(mac)}")

        assert "'HS256' is not accepted" in detail


def test_header_alg_other_than_the_keys_alg_is_refused(
    ed_key: SigningKey, ed_keyset: KeySet
) -> None:
    mismatched = ed25519_jws(ed_key, {"alg": "ES256", "kid": ed_key.kid}, PAYLOAD)

    detail = assert_refused_as_invalid(ed_keyset, mismatched)

    assert "does not match key" in detail


@pytest.mark.parametrize("cut", [1, 2, 10, 86, 87, 120])
def test_truncated_jws_is_refused(ed_key: SigningKey, ed_keyset: KeySet, cut: int) -> None:
    jws = ed_key.sign(PAYLOAD)

    assert_refused_as_invalid(ed_keyset, jws[:-cut])


def test_jws_with_an_attached_payload_is_refused(ed_key: SigningKey, ed_keyset: KeySet) -> None:
    header, _, signature = ed_key.sign(PAYLOAD).split(".")

    attached = f"{header}.{b64(PAYLOAD)}.{signature}"

    assert "detached" in assert_refused_as_invalid(ed_keyset, attached)


@pytest.mark.parametrize("jws", ["", "abc", "a.b", "a..b..c", None, b"x..y"])
def test_malformed_jws_is_refused(ed_keyset: KeySet, jws: object) -> None:
    assert_refused_as_invalid(ed_keyset, jws)


@pytest.mark.parametrize(
    "respell",
    [
        lambda s: s + "==",  # padding
        lambda s: s[:-1] + "+",  # standard, not url-safe, alphabet
        lambda s: s[:10] + " " + s[10:],  # characters a lax decoder skips
        lambda s: s[:-1] + ALPHABET[ALPHABET.index(s[-1]) ^ 1],  # same bytes, stray bit set
    ],
)
def test_signature_not_in_canonical_base64url_is_refused(
    ed_key: SigningKey, ed_keyset: KeySet, respell
) -> None:
    header, _, signature = ed_key.sign(PAYLOAD).split(".")

    detail = assert_refused_as_invalid(ed_keyset, f"{header}..{respell(signature)}")

    assert "base64url" in detail


@pytest.mark.parametrize(
    ("raw_header", "reason"),
    [
        (b"not json", "not base64url-encoded JSON"),
        (b'["EdDSA"]', "not a JSON object"),
        (b'{"alg":"EdDSA"}', "no kid"),
        (b'{"alg":"EdDSA","kid":""}', "no kid"),
        (b'{"alg":"EdDSA","kid":"K","kid":"K"}', "duplicate"),
        (b'{"alg":"EdDSA","kid":"K","b64":false}', "unsupported members"),
        (b'{"alg":"EdDSA","kid":"K","crit":["b64"]}', "unsupported members"),
        (b'{"kid":"K"}', "not accepted"),
    ],
)
def test_unacceptable_header_is_refused(
    ed_key: SigningKey, ed_keyset: KeySet, raw_header: bytes, reason: str
) -> None:
    signature = ed_key.sign(PAYLOAD).split(".")[2]
    raw_header = raw_header.replace(b'"K"', json.dumps(ed_key.kid).encode())

    detail = assert_refused_as_invalid(ed_keyset, f"{b64(raw_header)}..{signature}")

    assert reason in detail


@pytest.mark.parametrize(
    "raw_header",
    [b'{"kid":"K","alg":"EdDSA"}', b'{"alg": "EdDSA", "kid": "K"}', b'{"alg":"EdDSA","kid":"K"}\n'],
)
def test_header_in_another_json_spelling_is_refused_even_when_signed(
    ed_key: SigningKey, ed_keyset: KeySet, raw_header: bytes
) -> None:
    raw_header = raw_header.replace(b'"K"', json.dumps(ed_key.kid).encode())
    segment = b64(raw_header)
    signature = ed_key.private_key.sign(f"{segment}.{b64(PAYLOAD)}".encode())

    detail = assert_refused_as_invalid(ed_keyset, f"{segment}..{b64(signature)}")

    assert json.loads(raw_header) == {"alg": "EdDSA", "kid": ed_key.kid}
    assert "canonical form" in detail


# --- keys that are not accepted ------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["genrsa", "-out", "{out}", "1024"], "too small"),
        (["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "{out}"], "not supported"),
        (["genpkey", "-algorithm", "ed448", "-out", "{out}"], "unsupported"),
    ],
)
def test_unsupported_pem_keys_are_refused(tmp_path: Path, command: list[str], reason: str) -> None:
    path = tmp_path / "key.pem"
    openssl(*(arg.format(out=path) for arg in command))

    with pytest.raises(ValueError, match=reason):
        SigningKey.from_pem(path.read_bytes())


def test_encrypted_pem_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-aes256", "-pass", "pass:x", "-out", str(path))

    with pytest.raises(ValueError, match="encrypted"):
        SigningKey.from_pem(path.read_bytes())


def test_pem_that_is_not_a_private_key_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot load"):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kid": "2011-04-29"}, "not the RFC 7638 thumbprint"),
        ({"alg": "ES256"}, "does not fit"),
        ({"alg": "HS256"}, "does not fit"),
        ({"use": "enc"}, "not 'sig'"),
        ({"d": "AQAB"}, "private key members"),
        ({"kty": "oct", "k": "c2VjcmV0"}, "private key members"),
        ({"kty": "oct"}, "not supported"),
        ({"x": "AQAB"}, "32 bytes"),
        ({"x": None}, "missing"),
        ({"crv": "Ed448"}, "not supported"),
    ],
)
def test_unacceptable_jwk_is_refused(ed_key: SigningKey, change: dict, reason: str) -> None:
    jwk = {**ed_key.public_jwk(), **change}

    with pytest.raises(ValueError, match=reason):
        KeySet([jwk])


def test_rsa_jwk_under_2048_bits_is_refused() -> None:
    small = {"kty": "RSA", "n": RFC7638_N[:172], "e": "AQAB"}  # 1032 bits

    with pytest.raises(ValueError, match="too small"):
        KeySet([small])


def test_jwks_document_without_a_keys_list_is_refused(ed_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="'keys' list"):
        KeySet.from_jwks({"keys": ed_key.public_jwk()})


def test_unknown_kid_lookup_raises_unknown_key(ed_keyset: KeySet) -> None:
    with pytest.raises(UnknownKey):
        ed_keyset.public_key("no-such-kid")


def test_merged_key_set_verifies_signatures_of_both(ed_key: SigningKey) -> None:
    other = SigningKey.generate("ES256")
    left, right = KeySet([ed_key.public_jwk()]), KeySet([other.public_jwk()])

    merged = left.merged(right)

    assert sorted(merged.kids) == sorted([ed_key.kid, other.kid])
    assert merged.verify(other.sign(PAYLOAD), PAYLOAD) == other.kid
    assert merged.verify(ed_key.sign(PAYLOAD), PAYLOAD) == ed_key.kid
    assert left.kids == [ed_key.kid]


# --- keyring -----------------------------------------------------------------------


def test_created_keyring_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "keys"

    keyring = Keyring.create(directory, alg="EdDSA")

    index = json.loads((directory / "keyring.json").read_text())
    key_file = directory / f"{keyring.active.kid}.pem"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert index["active"] == keyring.active.kid
    assert [(k["kid"], k["alg"], k["retired_at"]) for k in index["keys"]] == [
        (keyring.active.kid, "EdDSA", None)
    ]
    assert index["keys"][0]["created_at"].endswith("Z")


def test_keyring_in_an_existing_open_directory_makes_it_private(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)

    Keyring.create(directory)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_creating_a_keyring_over_an_existing_one_is_refused(tmp_path: Path) -> None:
    Keyring.create(tmp_path / "keys")

    with pytest.raises(FileExistsError):
        Keyring.create(tmp_path / "keys")


def test_rotated_keys_stay_published_and_verify_through_the_jwks(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keys", alg="EdDSA")
    old = keyring.active
    old_jws = old.sign(PAYLOAD)

    new = keyring.rotate()
    new_jws = keyring.active.sign(PAYLOAD)
    keyset = KeySet.from_jwks(json.loads(json.dumps(keyring.jwks())))

    statuses = {jwk["kid"]: jwk["status"] for jwk in keyring.jwks()["keys"]}
    assert new.kid != old.kid and new.alg == "EdDSA"
    assert statuses == {new.kid: "active", old.kid: "retired"}
    assert keyset.verify(old_jws, PAYLOAD) == old.kid
    assert keyset.verify(new_jws, PAYLOAD) == new.kid
    assert keyring.keyset().verify(old_jws, PAYLOAD) == old.kid


def test_rotation_can_change_the_algorithm(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keys", alg="EdDSA")

    new = keyring.rotate("ES256")

    retired = [jwk for jwk in keyring.jwks()["keys"] if jwk["status"] == "retired"]
    assert (keyring.active.kid, keyring.active.alg) == (new.kid, "ES256")
    assert [jwk["alg"] for jwk in retired] == ["EdDSA"]
    assert retired[0]["retired_at"].endswith("Z")


def test_keyring_reloads_with_the_same_keys_and_active_key(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keys")
    keyring.rotate()

    reloaded = Keyring.load(tmp_path / "keys")

    assert reloaded.active.kid == keyring.active.kid
    assert reloaded.jwks() == keyring.jwks()
    assert keyring.keyset().verify(reloaded.active.sign(PAYLOAD), PAYLOAD) == keyring.active.kid
    assert {p.name for p in (tmp_path / "keys").glob("*.tmp")} == set()


def test_rotation_by_another_process_is_kept_by_a_later_rotation(tmp_path: Path) -> None:
    server = Keyring.create(tmp_path / "keys")
    admin = Keyring.load(tmp_path / "keys")
    admins_key = admin.rotate()

    servers_key = server.rotate()

    reloaded = Keyring.load(tmp_path / "keys")
    assert reloaded.active.kid == servers_key.kid
    assert admins_key.kid in reloaded.keyset()
    assert len(reloaded.keyset()) == 3


def test_key_file_that_does_not_match_its_kid_is_refused(tmp_path: Path) -> None:
    keyring = Keyring.create(tmp_path / "keys")
    key_file = tmp_path / "keys" / f"{keyring.active.kid}.pem"
    key_file.write_bytes(SigningKey.generate().to_pem())

    with pytest.raises(ValueError, match="does not hold"):
        Keyring.load(tmp_path / "keys")


def test_openssl_key_imports_into_a_new_keyring(
    openssl_rsa_pem: Path, rsa_key: SigningKey, tmp_path: Path
) -> None:
    keyring = Keyring.import_pem(tmp_path / "keys", openssl_rsa_pem.read_bytes())

    reloaded = Keyring.load(tmp_path / "keys")

    assert (keyring.active.kid, keyring.active.alg) == (rsa_key.kid, "RS256")
    assert reloaded.active.kid == rsa_key.kid
    assert stat.S_IMODE((tmp_path / "keys" / f"{rsa_key.kid}.pem").stat().st_mode) == 0o600
    assert reloaded.keyset().verify(rsa_key.sign(PAYLOAD), PAYLOAD) == rsa_key.kid


def test_openssl_key_imported_into_an_existing_keyring_becomes_active(
    openssl_rsa_pem: Path, rsa_key: SigningKey, tmp_path: Path
) -> None:
    keyring = Keyring.create(tmp_path / "keys", alg="EdDSA")
    previous = keyring.active

    imported = Keyring.import_pem(tmp_path / "keys", openssl_rsa_pem.read_bytes())

    statuses = {jwk["kid"]: jwk["status"] for jwk in imported.jwks()["keys"]}
    assert imported.active.kid == rsa_key.kid
    assert statuses == {rsa_key.kid: "active", previous.kid: "retired"}
    assert Keyring.load(tmp_path / "keys").active.kid == rsa_key.kid
