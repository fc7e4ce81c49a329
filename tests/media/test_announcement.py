# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Announcements played by the service: without a destination it answers, plays and hangs up;
with one it plays as early media and hands the call back (480 with the Reason the router reads)."""

from lab import audio
from media_suite import dial


def test_an_announcement_without_destination_is_answered_played_and_ended(media, phone, tmp_path):
    media.add_announcement('acme', 'closed', media.tones)
    call = dial(phone, media, 'closed', 'announcement;name=closed;then=no', tmp_path / 'closed.wav')
    assert call.wait_answered(5)
    assert call.wait_ended(audio.duration_ms(media.tones) / 1000.0 + 10) == (200, 'Normal call clearing')
    found, segments = audio.has_sequence(tmp_path / 'closed.wav')
    assert found, segments


def test_an_announcement_with_a_destination_plays_early_then_hands_the_call_on(media, phone, tmp_path):
    media.add_announcement('acme', 'welcome', media.tones)
    call = dial(phone, media, 'welcome', 'announcement;name=welcome;then=yes', tmp_path / 'welcome.wav')
    code, _reason = call.wait_ended(audio.duration_ms(media.tones) / 1000.0 + 10)
    assert code == 480 and call.early() and not call.answered()
    final = call.final_response()
    assert final.startswith('SIP/2.0 480') and 'Reason: SIP;cause=480;text="announcement played"' in final, final
    found, segments = audio.has_sequence(tmp_path / 'welcome.wav')
    assert found, segments


def test_an_announcement_the_tenant_does_not_have_is_not_found(media, phone):
    media.add_announcement('beta', 'beta-only', media.tones)
    call = dial(phone, media, 'beta-only', 'announcement;name=beta-only;then=yes', None)
    assert call.wait_ended(5)[0] == 404
