"""``hls.parse_playlist`` (pure) and URL redaction: no sockets."""

from __future__ import annotations

import pytest

from livetx_widgets.audio.fetch import redact
from livetx_widgets.audio.hls import HlsError, MediaPlaylist, parse_playlist

BASE = "https://cdn.example/radio/live/index.m3u8?token=abc"


def test_media_playlist():
    pl = parse_playlist(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:120\n"
        "#EXTINF:5.97,\nseg120.ts\n#EXTINF:6.0,title\n/abs/seg121.ts\n"
        "#EXT-X-DISCONTINUITY\n#EXTINF:4.5,\nhttps://other.example/seg122.aac\n",
        BASE,
    )
    assert isinstance(pl, MediaPlaylist)
    assert pl.target_duration == 6 and pl.media_sequence == 120 and not pl.ended
    assert [s.seq for s in pl.segments] == [120, 121, 122]
    assert [s.duration for s in pl.segments] == [5.97, 6.0, 4.5]
    assert pl.segments[0].uri == "https://cdn.example/radio/live/seg120.ts"
    assert pl.segments[1].uri == "https://cdn.example/abs/seg121.ts"
    assert pl.segments[2].uri == "https://other.example/seg122.aac"
    assert [s.discontinuity for s in pl.segments] == [False, False, True]
    assert pl.get(121) is pl.segments[1] and pl.get(119) is None and pl.get(123) is None
    assert pl.end_seq == 123


def test_ended_playlist_and_init_section():
    pl = parse_playlist(
        '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2,\na.m4s\n'
        "#EXT-X-ENDLIST\n",
        BASE,
    )
    assert pl.ended and pl.media_sequence == 0
    assert pl.init_uri == "https://cdn.example/radio/live/init.mp4"


def test_master_playlist_prefers_audio():
    variants = parse_playlist(
        "#EXTM3U\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=5000000,CODECS="avc1.640028,mp4a.40.2"\nhi.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=96000,CODECS="mp4a.40.2"\naudio.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2"\nlo.m3u8\n',
        BASE,
    )
    assert [v.uri.rsplit("/", 1)[1] for v in variants] == ["audio.m3u8", "lo.m3u8", "hi.m3u8"]
    with_rendition = parse_playlist(
        '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",DEFAULT=YES,URI="en.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e",AUDIO="a"\nlo.m3u8\n',
        BASE,
    )
    assert with_rendition[0].uri.endswith("/en.m3u8")


@pytest.mark.parametrize(
    "text, match",
    [
        ("<html>not a playlist</html>", "no #EXTM3U"),
        ("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:2,\na.ts\n", "encrypted"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:100@0\n#EXTINF:2,\na.ts\n",
         "byte-range"),
        ("#EXTM3U\n", "no #EXT-X-TARGETDURATION"),
    ],
)  # fmt: skip
def test_playlists_that_cannot_be_played(text, match):
    with pytest.raises(HlsError, match=match):
        parse_playlist(text, BASE)


def test_redact_hides_credentials_and_query_values():
    assert redact("https://user:pw@radio.example:8443/live.mp3?token=s3cret&x=1") == (
        "https://radio.example:8443/live.mp3?token=***&x=***"
    )
    assert redact("http://radio.example/live.mp3") == "http://radio.example/live.mp3"
