"""The one way reach_rl's nodes answer std_srvs calls (SetBool, Trigger): filled and logged."""


def answer(response, message: str, logger, success: bool = True, severity: str = "info"):
    """``response`` with ``success`` and ``message`` set, after logging ``message`` on ``logger``
    at ``severity`` (info, warning or error)."""
    response.success, response.message = success, message
    # One call per severity: rclpy refuses one call site logging at two severities.
    if severity == "error":
        logger.error(message)
    elif severity == "warning":
        logger.warning(message)
    else:
        logger.info(message)
    return response
