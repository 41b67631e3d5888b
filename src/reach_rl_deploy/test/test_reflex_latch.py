"""reach_rl_deploy.interfaces.reflex_latch: a reflex is reported once and recovered only on request."""
import threading

from reach_rl_deploy.interfaces.reflex_latch import ReflexLatch


def test_reflex_reported_and_kept_until_recovery_is_asked_for_and_done():
    reported = []
    latch = ReflexLatch(reported.append)
    assert latch.text == "" and not latch.take_recover_request()
    latch.latch("communication_constraints_violation")
    assert reported == ["communication_constraints_violation"]
    assert latch.text and not latch.take_recover_request()  # nobody asked
    asker = threading.Thread(target=latch.request_recover)  # ~/recover, another thread
    asker.start()
    asker.join()
    assert latch.take_recover_request() and not latch.take_recover_request()  # taken once
    assert latch.text  # still latched until the robot has recovered
    latch.cleared()
    assert latch.text == ""
