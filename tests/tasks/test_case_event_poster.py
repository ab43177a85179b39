"""The poster of a flow process's case events (``tasks.events.CaseEventPoster``): what steps
queue is posted by its own thread, in order, what queued meanwhile together up to
``POST_SIZE`` a request; ``flush`` waits for all of it; a failure is counted and logged, and
the rest still goes."""

from __future__ import annotations

import threading

import httpx

from tasks.events import POST_SIZE, CaseEventPoster


class Recorder:
    """Stands in for the Prefect API's HTTP client (the poster is what is tested here): keeps
    each request's events; the first ``fail`` requests answer ``status``."""

    def __init__(self, *, fail: int = 0, status: int = 500, hold: threading.Event | None = None):
        self.requests: list[list[dict[str, object]]] = []
        self.fail, self.status, self.hold = fail, status, hold
        self.entered = threading.Event()

    def post(self, path: str, body: object) -> httpx.Response:
        assert path == "/events"
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(10)
        request = httpx.Request("POST", "http://prefect.test/api/events")
        if self.fail:
            self.fail -= 1
            return httpx.Response(self.status, request=request)
        assert isinstance(body, list)
        self.requests.append(list(body))
        return httpx.Response(200, request=request)


def documents(start: int, count: int) -> list[dict[str, object]]:
    return [
        {"id": str(n), "event": "recovery.contact.created"} for n in range(start, start + count)
    ]


def test_queued_steps_go_in_order_and_together_up_to_a_request_size() -> None:
    held = threading.Event()
    http = Recorder(hold=held)
    poster = CaseEventPoster()
    # The first step's request waits at the server while three more steps queue theirs.
    poster.put(http, documents(0, 10))  # type: ignore[arg-type]
    assert http.entered.wait(10)
    for start in (10, 310, 610):
        poster.put(http, documents(start, 300))  # type: ignore[arg-type]
    assert not poster.flush(timeout=0.2)  # still held
    held.set()
    assert poster.flush(timeout=10)
    sent = [int(str(d["id"])) for request in http.requests for d in request]
    assert sent == list(range(910))
    assert all(len(request) <= POST_SIZE for request in http.requests)
    # What queued while the first request was out went in two requests, not three.
    assert [len(r) for r in http.requests] == [10, POST_SIZE, 900 - POST_SIZE]
    assert (poster.sent, poster.failed) == (910, 0)


def test_a_busy_answer_is_tried_again_and_a_failure_does_not_stop_the_rest() -> None:
    busy = Recorder(fail=1, status=503)
    poster = CaseEventPoster()
    poster.put(busy, documents(0, 5))  # type: ignore[arg-type]
    assert poster.flush(timeout=10)
    assert [len(r) for r in busy.requests] == [5]  # sent on the second try

    # A refusal that is not a busy answer is not tried again: those events are given up (and
    # logged), the poster goes on with the next.
    broken = Recorder(fail=1, status=500)
    poster.put(broken, documents(5, 5))  # type: ignore[arg-type]
    assert poster.flush(timeout=10)
    poster.put(broken, documents(10, 5))  # type: ignore[arg-type]
    assert poster.flush(timeout=10)
    assert (poster.sent, poster.failed) == (10, 5)
    assert [int(str(d["id"])) for r in broken.requests for d in r] == [10, 11, 12, 13, 14]


def test_events_for_two_prefect_apis_are_never_mixed_in_one_request() -> None:
    one, two = Recorder(), Recorder()
    poster = CaseEventPoster()
    poster.put(one, documents(0, 3))  # type: ignore[arg-type]
    poster.put(two, documents(3, 3))  # type: ignore[arg-type]
    poster.put(one, documents(6, 3))  # type: ignore[arg-type]
    assert poster.flush(timeout=10)
    assert sorted(int(str(d["id"])) for r in one.requests for d in r) == [0, 1, 2, 6, 7, 8]
    assert [int(str(d["id"])) for r in two.requests for d in r] == [3, 4, 5]
