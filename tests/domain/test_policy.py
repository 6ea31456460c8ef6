"""Call-next policy: unit tests per rule, then properties."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.domain.policy import (
    Candidate,
    Choice,
    CounterContext,
    PolicySettings,
    appointment_open,
    choose_next,
    is_eligible,
    rank,
    rank_with_reasons,
)

NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SETTINGS = PolicySettings(
    priority_ratio=3,
    max_bypass=20 * MIN,
    appointment_early=15 * MIN,
    appointment_late=15 * MIN,
)
COUNTER = CounterContext(
    number=5, services=(("A", 1), ("B", 1)), call_order="order", normal_since_priority=0
)


def cand(
    ticket_id: int,
    service: str = "A",
    waited: int = 0,
    *,
    priority: bool = False,
    target: int | None = None,
    slot: int | None = None,
) -> Candidate:
    """A candidate issued ``waited`` minutes before NOW; ``slot``: appointment start offset."""
    start = None if slot is None else NOW + slot * MIN
    end = None if start is None else start + 15 * MIN
    return Candidate(ticket_id, service, NOW - waited * MIN, priority, target, start, end)


def pick(
    candidates: list[Candidate],
    counter: CounterContext = COUNTER,
    policy: PolicySettings = SETTINGS,
    now: datetime = NOW,
) -> Choice:
    choice = choose_next(candidates, counter, policy, now)
    assert choice is not None
    return choice


# --- eligibility ------------------------------------------------------------------------


def test_no_candidates() -> None:
    assert choose_next([], COUNTER, SETTINGS, NOW) is None
    assert rank([], COUNTER, SETTINGS, NOW) == []


def test_unserved_service_not_eligible() -> None:
    assert choose_next([cand(1, "Z", 30)], COUNTER, SETTINGS, NOW) is None


def test_targeted_elsewhere_never_eligible() -> None:
    other = cand(1, "A", 60, priority=True, target=6)
    assert not is_eligible(other, COUNTER)
    assert choose_next([other], COUNTER, SETTINGS, NOW) is None
    assert pick([other, cand(2, "A", 1)]).candidate.ticket_id == 2


# --- targeted ---------------------------------------------------------------------------


def test_targeted_here_first_even_for_unserved_service() -> None:
    choice = pick(
        [
            cand(1, "A", 50),
            cand(2, "A", 40, priority=True),
            cand(3, "A", 0, slot=0),
            cand(4, "Z", 5, target=5),
            cand(5, "Z", 10, target=5),
        ],
        replace(COUNTER, normal_since_priority=3),
    )
    assert (choice.candidate.ticket_id, choice.reason) == (5, "targeted")
    assert choice.normal_since_priority == 3


# --- appointments -----------------------------------------------------------------------


def test_open_appointment_before_priority_and_normal() -> None:
    choice = pick(
        [cand(1, "A", 50), cand(2, "A", 40, priority=True), cand(3, "B", 1, slot=0)],
        replace(COUNTER, normal_since_priority=3),
    )
    assert (choice.candidate.ticket_id, choice.reason) == (3, "appointment")
    assert choice.normal_since_priority == 3


def test_earliest_slot_first() -> None:
    choice = pick([cand(1, "A", 1, slot=10), cand(2, "A", 0, slot=-5)])
    assert choice.candidate.ticket_id == 2


@pytest.mark.parametrize(
    ("slot", "is_open"),
    [
        (15, True),  # start - early == now
        (16, False),  # too early
        (-30, True),  # end + late == now (slot 15 min long)
        (-31, False),  # late
    ],
)
def test_appointment_window_bounds(slot: int, is_open: bool) -> None:
    c = cand(2, "B", 0, slot=slot)
    assert appointment_open(c, SETTINGS, NOW) is is_open
    choice = pick([cand(1, "A", 10), c])
    assert choice.reason == ("appointment" if is_open else "order")


def test_appointment_without_end_uses_start() -> None:
    c = Candidate(1, "A", NOW, False, None, NOW - 15 * MIN, None)
    assert appointment_open(c, SETTINGS, NOW)
    assert not appointment_open(c, SETTINGS, NOW + timedelta(seconds=1))


def test_a_slot_in_the_halls_own_zone_is_the_same_instant() -> None:
    # A slot booked as 18:00–18:15 Beijing time is 10:00–10:15 UTC: open at NOW (10:00 UTC),
    # not eight hours later, whatever zone each side was written in.
    beijing = timezone(timedelta(hours=8))
    start = datetime(2026, 5, 20, 18, 0, tzinfo=beijing)
    c = Candidate(1, "A", NOW, False, None, start, start + 15 * MIN)
    assert appointment_open(c, SETTINGS, NOW)
    assert not appointment_open(c, SETTINGS, NOW + 31 * MIN)
    assert pick([cand(2, "A", 30), c]).reason == "appointment"


@pytest.mark.parametrize(
    ("start", "end", "now", "is_open"),
    [
        # The driver reads ±infinity timestamps back as naive datetime.min/max: an open-ended
        # slot is open at any aware now, one that starts "never" is not.
        (datetime.min, datetime.max, NOW, True),
        (datetime.max, datetime.max, NOW, False),
        (datetime.min, datetime.min, NOW, False),
        # And a naive now against an aware slot compares the same wall-clock instants.
        (NOW, NOW + 15 * MIN, NOW.replace(tzinfo=None), True),
        (NOW + 16 * MIN, NOW + 30 * MIN, NOW.replace(tzinfo=None), False),
    ],
)
def test_slots_without_a_zone_compare_with_an_aware_now(
    start: datetime, end: datetime, now: datetime, is_open: bool
) -> None:
    c = Candidate(1, "A", NOW, False, None, start, end)
    assert appointment_open(c, SETTINGS, now) is is_open


def test_walk_in_has_no_open_appointment() -> None:
    assert appointment_open(cand(1), SETTINGS, NOW) is False


def test_late_appointment_is_a_normal_ticket() -> None:
    late = cand(1, "A", 5, slot=-60)
    older = cand(2, "A", 10)
    assert [c.ticket_id for c in rank([late, older], COUNTER, SETTINGS, NOW)] == [2, 1]
    assert pick([late, older]).reason == "order"


def test_late_appointment_keeps_priority_flag() -> None:
    late = cand(1, "A", 5, slot=-60, priority=True)
    choice = pick([late, cand(2, "A", 10)], replace(COUNTER, normal_since_priority=3))
    assert (choice.candidate.ticket_id, choice.reason) == (1, "priority")


# --- priority ratio ---------------------------------------------------------------------


def test_normal_until_ratio_reached() -> None:
    tickets = [cand(1, "A", 5), cand(2, "A", 10, priority=True)]
    choice = pick(tickets, replace(COUNTER, normal_since_priority=2))
    assert (choice.candidate.ticket_id, choice.reason, choice.normal_since_priority) == (
        1,
        "order",
        3,
    )
    choice = pick(tickets, replace(COUNTER, normal_since_priority=3))
    assert (choice.candidate.ticket_id, choice.reason, choice.normal_since_priority) == (
        2,
        "priority",
        0,
    )


def test_oldest_priority_across_services() -> None:
    tickets = [cand(1, "A", 5, priority=True), cand(2, "B", 8, priority=True), cand(3, "A", 1)]
    assert pick(tickets, replace(COUNTER, normal_since_priority=3)).candidate.ticket_id == 2


def test_ratio_zero_priority_always_first() -> None:
    policy = replace(SETTINGS, priority_ratio=0)
    choice = pick([cand(1, "A", 15), cand(2, "A", 1, priority=True)], policy=policy)
    assert (choice.candidate.ticket_id, choice.reason, choice.normal_since_priority) == (
        2,
        "priority",
        0,
    )


def test_priority_when_no_normal_waits() -> None:
    choice = pick([cand(1, "A", 1, priority=True)], replace(COUNTER, normal_since_priority=1))
    assert (choice.reason, choice.normal_since_priority) == ("priority", 0)


def test_normal_when_priority_due_but_none_waits() -> None:
    choice = pick([cand(1, "A", 1)], replace(COUNTER, normal_since_priority=7))
    assert (choice.reason, choice.normal_since_priority) == ("order", 8)


# --- aging ------------------------------------------------------------------------------


def test_aged_normal_goes_before_newer_priority() -> None:
    counter = replace(COUNTER, normal_since_priority=3)
    choice = pick([cand(1, "A", 21), cand(2, "A", 5, priority=True)], counter)
    assert (choice.candidate.ticket_id, choice.reason, choice.normal_since_priority) == (
        1,
        "aged",
        4,
    )


def test_aging_threshold_is_strict() -> None:
    counter = replace(COUNTER, normal_since_priority=3)
    choice = pick([cand(1, "A", 20), cand(2, "A", 5, priority=True)], counter)
    assert choice.reason == "priority"


def test_aging_does_not_jump_an_older_priority_ticket() -> None:
    counter = replace(COUNTER, normal_since_priority=3)
    choice = pick([cand(1, "A", 30), cand(2, "A", 40, priority=True)], counter)
    assert (choice.candidate.ticket_id, choice.reason) == (2, "priority")


def test_aged_picks_oldest_normal_across_services() -> None:
    counter = replace(COUNTER, normal_since_priority=3)
    tickets = [cand(1, "A", 25), cand(2, "B", 30), cand(3, "A", 1, priority=True)]
    assert pick(tickets, counter).candidate.ticket_id == 2


# --- across services --------------------------------------------------------------------


def test_order_takes_first_listed_service() -> None:
    tickets = [cand(1, "B", 30), cand(2, "A", 1), cand(3, "A", 2)]
    choice = pick(tickets)
    assert (choice.candidate.ticket_id, choice.reason) == (3, "order")
    assert [c.ticket_id for c in rank(tickets, COUNTER, SETTINGS, NOW)] == [3, 2, 1]


def test_weighted_largest_weighted_wait() -> None:
    counter = CounterContext(5, (("A", 1), ("B", 3)), "weighted", 0)
    choice = pick([cand(1, "A", 20), cand(2, "B", 10)], counter)
    assert (choice.candidate.ticket_id, choice.reason) == (2, "weighted")
    choice = pick([cand(1, "A", 40), cand(2, "B", 10)], counter)
    assert choice.candidate.ticket_id == 1


def test_weighted_tie_broken_by_queue_key_then_id() -> None:
    counter = CounterContext(5, (("A", 2), ("B", 1)), "weighted", 0)
    # 10 min * 2 == 20 min * 1: the older head (B) wins
    assert pick([cand(1, "A", 10), cand(2, "B", 20)], counter).candidate.ticket_id == 2
    counter = CounterContext(5, (("A", 1), ("B", 1)), "weighted", 0)
    assert pick([cand(7, "A", 10), cand(3, "B", 10)], counter).candidate.ticket_id == 3


def test_weighted_future_queue_key_counts_as_zero_wait() -> None:
    counter = CounterContext(5, (("A", 1), ("B", 5)), "weighted", 0)
    # both waits clamp to zero, so the earlier queue_key wins despite B's weight
    assert pick([cand(1, "A", -5), cand(2, "B", -2)], counter).candidate.ticket_id == 2


def test_same_queue_key_broken_by_ticket_id() -> None:
    assert pick([cand(9, "A", 5), cand(4, "A", 5)]).candidate.ticket_id == 4


def test_unknown_call_order_rejected() -> None:
    with pytest.raises(ValueError, match="call order"):
        choose_next([cand(1)], replace(COUNTER, call_order="random"), SETTINGS, NOW)


def test_full_rank_mixed() -> None:
    tickets = [
        cand(1, "A", 50),
        cand(2, "B", 40),
        cand(3, "A", 30, priority=True),
        cand(4, "A", 10, priority=True),
        cand(5, "A", 5, slot=0),
        cand(6, "A", 1, target=5),
        cand(7, "A", 60, target=6),
        cand(8, "A", 2),
    ]
    got = list(rank_with_reasons(tickets, replace(COUNTER, normal_since_priority=3), SETTINGS, NOW))
    assert [(c.ticket_id, r) for c, r in got] == [
        (6, "targeted"),
        (5, "appointment"),
        (1, "aged"),  # 50 min, older than priority 3
        (2, "aged"),  # 40 min
        (3, "priority"),  # head normal (8, 2 min) is not aged
        (4, "priority"),
        (8, "order"),
    ]


# --- properties -------------------------------------------------------------------------

SERVICES = ("A", "B", "C", "D")


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Candidate]:
    n = draw(st.integers(0, 25))
    out = []
    for i in range(n):
        slot = draw(st.none() | st.integers(-90, 60))
        start = None if slot is None else NOW + slot * MIN
        end = None if start is None else start + draw(st.sampled_from([0, 15, 30])) * MIN
        out.append(
            Candidate(
                ticket_id=draw(st.integers(1, 10_000)) * 100 + i,
                service_code=draw(st.sampled_from(SERVICES)),
                queue_key=NOW - draw(st.integers(-5, 120)) * MIN,
                priority=draw(st.booleans()),
                target_counter=draw(st.none() | st.none() | st.integers(1, 3)),
                appointment_start=start,
                appointment_end=end,
            )
        )
    return out


@st.composite
def counters(draw: st.DrawFn) -> CounterContext:
    codes = draw(st.lists(st.sampled_from(SERVICES[:3]), min_size=1, max_size=3, unique=True))
    return CounterContext(
        number=draw(st.integers(1, 3)),
        services=tuple((c, draw(st.integers(1, 5))) for c in codes),
        call_order=draw(st.sampled_from(["order", "weighted"])),
        normal_since_priority=draw(st.integers(0, 5)),
    )


policies = st.builds(
    PolicySettings,
    priority_ratio=st.integers(0, 4),
    max_bypass=st.integers(0, 60).map(lambda m: m * MIN),
    appointment_early=st.integers(0, 30).map(lambda m: m * MIN),
    appointment_late=st.integers(0, 30).map(lambda m: m * MIN),
)


def _kind(c: Candidate, counter: CounterContext, policy: PolicySettings) -> str:
    if c.target_counter == counter.number:
        return "targeted"
    if appointment_open(c, policy, NOW):
        return "appointment"
    return "priority" if c.priority else "normal"


@given(candidate_lists(), counters(), policies)
def test_choice_is_eligible(
    candidates: list[Candidate], counter: CounterContext, policy: PolicySettings
) -> None:
    choice = choose_next(candidates, counter, policy, NOW)
    served = {code for code, _ in counter.services}
    eligible = [
        c
        for c in candidates
        if c.target_counter == counter.number
        or (c.target_counter is None and c.service_code in served)
    ]
    if choice is None:
        assert eligible == []
        return
    assert choice.candidate in eligible
    assert choice.candidate.target_counter in (None, counter.number)
    assert choice.reason == _kind(choice.candidate, counter, policy) or (
        choice.reason in ("aged", "order", "weighted")
        and _kind(choice.candidate, counter, policy) == "normal"
    )


@given(candidate_lists(), counters(), policies)
def test_rank_is_permutation_and_retry_consistent(
    candidates: list[Candidate], counter: CounterContext, policy: PolicySettings
) -> None:
    ranked = rank(candidates, counter, policy, NOW)
    eligible = [c for c in candidates if is_eligible(c, counter)]
    assert sorted(ranked, key=lambda c: c.ticket_id) == sorted(eligible, key=lambda c: c.ticket_id)
    choice = choose_next(candidates, counter, policy, NOW)
    assert (choice.candidate if choice else None) == (ranked[0] if ranked else None)
    if ranked:
        # the retry after losing a race on the first is the choice without it
        rest = [c for c in candidates if c is not ranked[0]]
        assert rank(rest, counter, policy, NOW) == ranked[1:]


@given(candidate_lists(), counters(), policies)
def test_order_of_kinds_and_targeted_oldest(
    candidates: list[Candidate], counter: CounterContext, policy: PolicySettings
) -> None:
    order = {"targeted": 0, "appointment": 1, "other": 2}
    kinds = [
        order.get(_kind(c, counter, policy), 2) for c in rank(candidates, counter, policy, NOW)
    ]
    assert kinds == sorted(kinds)
    targeted = [c for c in candidates if c.target_counter == counter.number]
    choice = choose_next(candidates, counter, policy, NOW)
    if targeted:
        assert choice is not None
        assert choice.reason == "targeted"
        assert choice.candidate.queue_key == min(c.queue_key for c in targeted)


@given(candidate_lists(), counters(), policies)
def test_aging_bound(
    candidates: list[Candidate], counter: CounterContext, policy: PolicySettings
) -> None:
    """A priority call never passes over a normal ticket already waiting past max_bypass."""
    choice = choose_next(candidates, counter, policy, NOW)
    if choice is None or choice.reason != "priority":
        return
    chosen = choice.candidate
    for c in candidates:
        if is_eligible(c, counter) and _kind(c, counter, policy) == "normal":
            bypassed = (c.queue_key, c.ticket_id) < (chosen.queue_key, chosen.ticket_id)
            assert not (bypassed and c.queue_key < NOW - policy.max_bypass)


@given(candidate_lists(), counters(), policies)
def test_service_selection(
    candidates: list[Candidate], counter: CounterContext, policy: PolicySettings
) -> None:
    choice = choose_next(candidates, counter, policy, NOW)
    if choice is None or choice.reason not in ("order", "weighted"):
        return
    assert choice.reason == counter.call_order
    normals = [
        c for c in candidates if is_eligible(c, counter) and _kind(c, counter, policy) == "normal"
    ]
    weights = dict(reversed(counter.services))  # first listed weight wins
    chosen = choice.candidate
    assert chosen == min(
        (c for c in normals if c.service_code == chosen.service_code),
        key=lambda c: (c.queue_key, c.ticket_id),
    )
    if counter.call_order == "order":
        position = [code for code, _ in counter.services].index(chosen.service_code)
        earlier = {code for code, _ in counter.services[:position]}
        assert not any(c.service_code in earlier for c in normals)
    else:

        def weighted(c: Candidate) -> timedelta:
            return max(NOW - c.queue_key, timedelta(0)) * weights[c.service_code]

        assert all(weighted(c) <= weighted(chosen) for c in normals)


@settings(max_examples=50)
@given(
    st.integers(1, 5),
    st.integers(0, 5),
    st.integers(20, 40),
    st.integers(20, 40),
    st.sampled_from(["order", "weighted"]),
)
def test_ratio_alternates_one_priority_per_n_normal(
    ratio: int, start_count: int, n_normal: int, n_priority: int, call_order: str
) -> None:
    policy = replace(SETTINGS, priority_ratio=ratio, max_bypass=timedelta(days=1))
    counter = CounterContext(1, (("A", 1), ("B", 2)), call_order, min(start_count, ratio))
    waiting = [cand(i, "AB"[i % 2], i % 17) for i in range(n_normal)] + [
        cand(1000 + i, "AB"[i % 3 % 2], i % 13, priority=True) for i in range(n_priority)
    ]
    kinds = []
    while waiting:
        choice = pick(waiting, counter, policy)
        waiting.remove(choice.candidate)
        counter = replace(counter, normal_since_priority=choice.normal_since_priority)
        kinds.append("P" if choice.candidate.priority else "N")
        assert choice.reason == ("priority" if choice.candidate.priority else call_order)
    # while both kinds remain, the sequence is (N * ratio, P) repeated, after the first block
    first_block = ratio - min(start_count, ratio)
    expected = "N" * first_block + "P" + ("N" * ratio + "P") * n_priority
    sequence = "".join(kinds)
    last_n = sequence.rfind("N")
    last_p = sequence.rfind("P")
    common = min(last_n, last_p) + 1  # after this only one kind is left
    assert sequence[:common] == expected[:common]


def test_rank_lists_a_ticket_read_twice_once() -> None:
    # A ticket can reach the ranking twice (e.g. read through two of the counter's queues);
    # listing it twice would have the counter try it again after losing it.
    targeted, booked = cand(1, target=5), cand(2, slot=0)
    elderly, normal = cand(3, waited=5, priority=True), cand(4, "B", waited=9)
    candidates = [targeted, booked, elderly, normal]
    doubled = [c for c in candidates for _ in range(2)]
    assert rank(doubled, COUNTER, SETTINGS, NOW) == rank(candidates, COUNTER, SETTINGS, NOW)
    assert rank(doubled, COUNTER, SETTINGS, NOW) == [targeted, booked, normal, elderly]


@pytest.mark.parametrize(
    ("counter", "policy", "message"),
    [
        (replace(COUNTER, call_order="random"), SETTINGS, "unknown call order 'random'"),
        (COUNTER, replace(SETTINGS, priority_ratio=-1), "priority_ratio must be >= 0"),
        (
            replace(COUNTER, normal_since_priority=-1),
            SETTINGS,
            "normal_since_priority must be >= 0",
        ),
    ],
)
def test_bad_settings_say_exactly_what_is_wrong(
    counter: CounterContext, policy: PolicySettings, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        rank([cand(1)], counter, policy, NOW)
