"""The SIPp helpers without SIPp: scenario rendering and reading the phones' logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from coverage_lab.phones import (
    PHONE_PORTS,
    PhoneCall,
    Phones,
    answers,
    busy,
    caller_result,
    never_answers,
    parse_events,
    phone_calls,
    presses,
    render_caller_scenario,
    render_phone_scenario,
)

PJSIP_CONF = Path(__file__).resolve().parents[2] / "config" / "asterisk" / "pjsip.conf"


def test_every_phone_port_matches_a_static_contact_in_pjsip_conf() -> None:
    """The phone/port map and pjsip.conf's AOR contacts agree."""
    conf = PJSIP_CONF.read_text()
    for name, port in PHONE_PORTS.items():
        assert f"@127.0.0.1:{port}" in conf or f"sip:127.0.0.1:{port}" in conf, name


@pytest.mark.parametrize(
    "behaviour",
    [answers(), answers(2.5, hangup_after=4), never_answers(), busy(), presses("1")],
    ids=["answers", "answers-late-hangs-up", "never", "busy", "presses-1"],
)
def test_every_behaviour_renders_a_complete_scenario(behaviour: object) -> None:
    """No placeholder is left in the XML SIPp will run."""
    assert hasattr(behaviour, "kind")
    xml = render_phone_scenario("operator2", behaviour)  # type: ignore[arg-type]
    assert "{{" not in xml
    assert xml.lstrip().startswith("<?xml")


def test_press_1_sends_the_digit_as_sip_info() -> None:
    """The press-1 phone sends an INFO with application/dtmf-relay Signal=1."""
    xml = render_phone_scenario("patel", presses("1", after=1, delay=2))
    assert "INFO [next_url] SIP/2.0" in xml
    assert "Signal=1" in xml
    assert 'timeout="2000"' in xml
    assert 'timeout="1000"' in xml


def test_the_caller_scenario_escapes_the_display_name() -> None:
    """A display name cannot break the XML or the From header."""
    xml = render_caller_scenario("+15550100001", 'Eve <"]]>\r\nX: y', hangup_after=None)
    assert '"Eve X: y" <sip:+15550100001@' in xml
    assert "{{" not in xml


def test_a_carrier_caller_never_answers_a_challenge() -> None:
    """The carrier is identified by address: its scenario has no credentials and CSeq 1."""
    xml = render_caller_scenario("+15550100001", "Test", hangup_after=None)
    assert "[authentication" not in xml
    assert "CSeq: 1 ACK" in xml
    assert "CSeq: 2 BYE" in xml


def test_a_phone_placing_a_call_answers_the_challenge_with_its_credentials() -> None:
    """401 -> ACK -> INVITE with digest credentials; the dialog then goes on at CSeq 2."""
    xml = render_caller_scenario("operator1", "Op", hangup_after=None, password="s3cret-_x")
    assert '<recv response="401" auth="true">' in xml
    assert "[authentication username=operator1 password=s3cret-_x]" in xml
    assert "CSeq: 2 INVITE" in xml
    assert "CSeq: 2 ACK" in xml
    assert "CSeq: 3 BYE" in xml
    assert "{{" not in xml


def test_a_phone_log_folds_into_calls(tmp_path: Path) -> None:
    """invite/answered/dtmf/remote_bye lines become one answered call with its digits and when."""
    log = tmp_path / "patel.events.log"
    log.write_text(
        "EV|2026-11-27\t10:00:00.000000\t1795773600.000000|invite|c1|"
        ' "Test" <sip:+15550100001@127.0.0.1>;tag=x\n'
        "EV|2026-11-27\t10:00:01.000000\t1795773601.000000|answered|c1|200\n"
        "EV|2026-11-27\t10:00:02.000000\t1795773602.000000|dtmf|c1|1\n"
        "EV|2026-11-27\t10:00:05.500000\t1795773605.500000|remote_bye|c1|BYE\n"
        "EV|2026-11-27\t10:00:06.000000\t1795773606.000000|invite|c2|<sip:+15550100002@h>\n"
        "EV|2026-11-27\t10:00:07.000000\t1795773607.000000|cancelled|c2|CANCEL\n"
    )
    first, second = phone_calls("patel", parse_events(log))
    assert (first.caller, first.outcome, first.digits, first.ended_by) == (
        "+15550100001",
        "answered",
        "1",
        "remote",
    )
    assert first.talk_seconds == pytest.approx(4.5)
    assert first.pressed_at == pytest.approx(1795773602.0)
    assert (second.caller, second.outcome, second.answered) == ("+15550100002", "cancelled", False)


def test_a_refused_call_reports_the_status(tmp_path: Path) -> None:
    """A caller refused with 486 is not answered and knows why."""
    log = tmp_path / "caller.events.log"
    log.write_text(
        "EV|2026-11-27\t10:00:00.000000\t1795773600.000000|invite|x|5550100\n"
        "EV|2026-11-27\t10:00:00.500000\t1795773600.500000|rejected|x|486\n"
    )
    result = caller_result("+15550100001", "5550100", parse_events(log), 0)
    assert not result.answered
    assert result.rejected_with == 486


def test_a_missing_log_means_no_calls_yet(tmp_path: Path) -> None:
    """A phone that has not written its log yet received nothing."""
    assert parse_events(tmp_path / "nothing.log") == []


def test_a_phone_that_lost_a_ringall_race_did_not_get_the_call(tmp_path: Path) -> None:
    """Three operators answer at once; the two hung up within milliseconds lost the race."""
    phones = Phones(tmp_path)
    logs = tmp_path / "phones"
    logs.mkdir()
    t0 = 1795773600.0
    ends = {
        "operator1": ("remote_bye", 0.003),
        "operator2": ("local_bye", 4.0),
        "operator3": ("remote_bye", 0.004),
    }
    for name, (how, after) in ends.items():
        (logs / f"{name}.events.log").write_text(
            f"EV|x\t{t0}|invite|{name}-c|<sip:+15550100001@127.0.0.1>\n"
            f"EV|x\t{t0 + 11}|answered|{name}-c|200\n"
            f"EV|x\t{t0 + 11 + after}|{how}|{name}-c|BYE\n"
        )
        phones._phones[name] = _StubPhone(name, logs / f"{name}.events.log")  # type: ignore[assignment]
    assert phones.answered_by("+15550100001") == "operator2"
    lost = {c.phone for c in phones.calls() if c.lost_race}
    assert lost == {"operator1", "operator3"}


def phones_with(
    tmp_path: Path, caller: str, lines: dict[str, list[tuple[float, str, str]]]
) -> Phones:
    """Phones whose logs are written already: each invited by `caller` at t0, then `lines`
    (seconds after t0, event, detail)."""
    phones = Phones(tmp_path)
    logs = tmp_path / "phones"
    logs.mkdir()
    t0 = 1795773600.0
    for name, events in lines.items():
        text = f"EV|x\t{t0}|invite|{name}-c|<sip:{caller}@127.0.0.1>\n"
        text += "".join(f"EV|x\t{t0 + at}|{what}|{name}-c|{d}\n" for at, what, d in events)
        (logs / f"{name}.events.log").write_text(text)
        phones._phones[name] = _StubPhone(name, logs / f"{name}.events.log")  # type: ignore[assignment]
    return phones


def test_a_phone_that_talked_got_the_call_over_one_whose_line_never_ended(
    tmp_path: Path,
) -> None:
    """Two operators answer in the same millisecond; one talks 3 s and hangs up, the other's
    log ends at its answer (its BYE never logged): the one who talked got the call."""
    phones = phones_with(
        tmp_path,
        "+15550100048",
        {
            "operator1": [(11.0, "answered", "200"), (14.0, "local_bye", "BYE"), (14.0, "end", "")],
            "operator3": [(11.0009, "answered", "200")],
        },
    )
    assert phones.answered_by("+15550100048") == "operator1"


def test_a_voicemail_that_answered_earlier_is_no_rival_of_the_phone_answering_now(
    tmp_path: Path,
) -> None:
    """The primary's voicemail answered and was hung up after its prompt; the backup has just
    answered and still talks: the backup got the call."""
    phones = phones_with(
        tmp_path,
        "+15550100036",
        {
            "nguyen": [(1.0, "answered", "200"), (3.5, "remote_bye", "BYE"), (3.5, "end", "")],
            "okafor": [(5.0, "answered", "200")],
        },
    )
    assert phones.answered_by("+15550100036") == "okafor"


class _StubPhone:
    """A phone whose log is already written (no SIPp)."""

    def __init__(self, name: str, events: Path) -> None:
        self.name = name
        self.events = events

    def calls(self) -> list[PhoneCall]:
        return phone_calls(self.name, parse_events(self.events))
