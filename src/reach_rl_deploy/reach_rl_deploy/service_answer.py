"""The one way reach_rl's nodes answer std_srvs calls (SetBool, Trigger): filled and logged."""


def answer(response, message: str, log, success: bool = True):
    """``response`` with ``success`` and ``message`` set, after ``log(message)``."""
    response.success, response.message = success, message
    log(message)
    return response
