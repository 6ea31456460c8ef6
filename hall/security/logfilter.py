"""A logging filter that masks ID and mobile numbers in every log record."""

from __future__ import annotations

import logging
from typing import Any

from hall.domain.pii import mask_text

__all__ = ["PiiLogFilter", "install_pii_filter"]


class PiiLogFilter(logging.Filter):
    """Renders the message, masks personal numbers in it and in the traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_pii_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the record, logging reports it
            return True
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        record._pii_masked = True
        return True


_installed = False


def install_pii_filter() -> None:
    """Mask every record created from now on, whatever logger or handler it goes to.

    A filter on one logger misses records propagated from its children, and handlers come and
    go, so the filter runs in the record factory. Idempotent.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()
    pii_filter = PiiLogFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        pii_filter.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
