"""`edgedet track` writes byte-for-byte the tracks it wrote before the tracker's speed work, on every shared
MOT sequence at detect-every 1, 2, 3 and with the ByteTrack second association (sha256 of the MOT txt).

The hashes were recorded with the tracker of commit 4316bd5 (7x7 covariance, generic assignment): a change
that moves any of these is a change of behaviour, to be argued with `edgedet eval mot` numbers, not a speed-up.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.conftest import shared_path

from edgedet.motchallenge import write_mot
from edgedet.tracking import TrackerConfig
from edgedet.tracking.replay import track_sequence

GOLDEN = [
    ("MOT17-02-FRCNN", "byte", "955ca699c0ebab2e146384804a514ab09eeae5db7311c580cc88c5170e908842"),
    ("MOT17-02-FRCNN", "k1", "30f0461f414c936e0e0994203b04cb11cc15281710079b6930a2aed75c1f87e1"),
    ("MOT17-02-FRCNN", "k2", "453ddc55702ad0b446a63304107e35840d8810978d7a5d5584bcc676a794b45a"),
    ("MOT17-02-FRCNN", "k3", "781b646b17f28e16f1d4465ce736f5eae9edc71e2f304c0fbe3472ae7e0fdae6"),
    ("MOT17-05-FRCNN", "byte", "774f7afdc8009ef03ba308f4b2e33038307c406b221cbd49741ce8ebbabf5168"),
    ("MOT17-05-FRCNN", "k1", "d1dd6e410fcbca01c71c061ca08ed3400c8b555b31fea6ca4f27d49fff137c8f"),
    ("MOT17-05-FRCNN", "k2", "0caa2b0e526e8984b57155a56dd13ebeac3dd0155784f3cfc727ff15cc2f4acf"),
    ("MOT17-05-FRCNN", "k3", "e45cd91df873d8fa18da2bcf90a0457260c824456b538941e745dfae163d57c1"),
    ("MOT17-09-FRCNN", "byte", "bad9f72a203177128ac2b497a2efb310507c6a6092f25aa4a296d38ef3d3739d"),
    ("MOT17-09-FRCNN", "k1", "9090faca898c230f24097352324613b80c890a0fc668810b403a8a2a02e63246"),
    ("MOT17-09-FRCNN", "k2", "80953c9fece43fbb3820de0f3cec71293172f0f0622ac7f3a6ed49895adf8061"),
    ("MOT17-09-FRCNN", "k3", "f612b8fa1a1ac14a2c22bc26f6662ef3f1790ce97e16404751d07444810c4d57"),
    ("TUD-Stadtmitte", "byte", "dd541c787322af7331f3d92ae7ecdb95a115b4a0087ef083a770ff7a4435a520"),
    ("TUD-Stadtmitte", "k1", "6dd78769d6ff9035c2b3de6577c53cfb3e6a752ba3f852adae04fd2a7e26e513"),
    ("TUD-Stadtmitte", "k2", "62a347f290e1e105e0765808e305ff48e200f1fb4c2efafc6eecee4beb7c9ba3"),
    ("TUD-Stadtmitte", "k3", "8376ed3b763d2013e28ba11169c6066128f818eecdd8d14b44ee0061b614d9f7"),
    ("Venice-2", "byte", "ca6ba1dbfeb022d7a16201867455ba2e65ba7d88773357e8f265355e099e9768"),
    ("Venice-2", "k1", "737b03c0dabb14855b1f16595b7b8556d413a91b791b554fbb173d1c81598e6a"),
    ("Venice-2", "k2", "71141f6babad3ea691d4cc0d9322f79839f63f0c016d3904f077b427ad612933"),
    ("Venice-2", "k3", "0fb16434151575126deaf90679bc81ad09cb72ae0e50a4de47fcd71e77b86133"),
]


@pytest.mark.parametrize(("sequence", "mode", "sha256"), GOLDEN)
def test_tracks_are_byte_identical_to_before(sequence: str, mode: str, sha256: str, tmp_path: Path) -> None:
    seq = shared_path("mot", sequence)
    if mode == "byte":
        rows = track_sequence(seq / "det.txt", seq / "seqinfo.ini", TrackerConfig(second_association=True))
    else:
        rows = track_sequence(
            seq / "det.txt", seq / "seqinfo.ini", TrackerConfig(), detect_every=int(mode[1:])
        )
    out = tmp_path / "tracks.txt"
    write_mot(rows, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256
