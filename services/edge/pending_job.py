"""One job the edge waits for: the worker's events as they come, what they report (usage,
cost, errors) and what the client was given of them."""

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

from services.edge.admission import Reservation
from services.edge.spend import Spending
from shared.budgets import BudgetState
from shared.delivered import delta_chars
from shared.errors import GatewayError, ProviderError, rebuild
from shared.messages import (
    ChatJob,
    DeltaEvent,
    DoneEvent,
    EmbeddingsJob,
    EmbeddingsResult,
    ErrorEvent,
    Event,
    Job,
    RerankJob,
    RerankResultEvent,
    decode_event,
)
from shared.schemas import Usage


@dataclass
class PendingJob:
    job: Job
    provider: str
    events: asyncio.Queue[bytes]
    reservations: list[Reservation] = field(default_factory=list)
    used_tokens: int = 0  # what the provider reported, settled against the reservations
    usage: Usage | None = None  # the audit record reads these two when the request ends
    error_type: str | None = None
    answered: bool = False  # the last event came: the worker publishes nothing more
    delivered_chars: int = 0  # answer text written to the client (`shared.delivered`)
    handed_chars: int = 0  # answer text handed to the writer, not yet known to be written
    waited: float = 0.0  # seconds spent waiting for the worker's events (the edge's overhead)
    released: bool = False
    spending: Spending | None = None
    # Who answered: the provider, the model it was asked for and the model it reported.
    priced_as: tuple[str, str | None, str | None] | None = None
    cost: Decimal | None = Decimal(0)  # what it cost (`spend.py`); None: its model is unpriced
    cost_model: str | None = None  # the model of the price row it was priced by
    budgets: list[BudgetState] = field(default_factory=list)  # as its settlement left them

    def _decode(self, raw: bytes) -> Event:
        event = decode_event(raw)
        self.answered = not isinstance(event, DeltaEvent)
        if isinstance(event, DeltaEvent):
            self.handed_chars += delta_chars(event)
        elif isinstance(event, DoneEvent):
            self.used_tokens, self.usage = event.usage.total_tokens, event.usage
            self.price(event.provider or self.provider, event.request_model, event.model)
        elif isinstance(event, EmbeddingsResult):
            self.used_tokens, self.usage = event.usage.total_tokens, event.usage
            self.price(self.provider, self._asked(), event.model)
        elif isinstance(event, RerankResultEvent):
            self.price(self.provider, self._asked(), None)
        elif isinstance(event, ErrorEvent):
            self.error_type = event.type
        return event

    def _asked(self) -> str | None:
        job = self.job
        return job.request.model if isinstance(job, ChatJob | EmbeddingsJob | RerankJob) else None

    def price(self, provider: str, asked: str | None, reported: str | None) -> None:
        """The answer's cost, known before it is written (a stream's last event shows it)."""
        self.priced_as = (provider, asked or self._asked(), reported)
        if self.spending is not None:
            self.cost, self.cost_model = self.spending.job_cost(
                self.job, self.priced_as, self.usage
            )

    async def next_event(self) -> Event:
        """The next event. The stream writer asks for more only once it wrote what it had:
        the text handed out before was written."""
        self.delivered_chars, self.handed_chars = self.delivered_chars + self.handed_chars, 0
        remaining = self.job.deadline - time.time()
        waiting = time.perf_counter()
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                raw = await self.events.get()
        except TimeoutError:
            self.error_type = ProviderError.type
            raise ProviderError(
                "The provider did not answer in time",
                status=504,
                details={"provider": self.provider},
            ) from None
        finally:
            self.waited += time.perf_counter() - waiting
        return self._decode(raw)

    def ready_events(self) -> list[Event]:
        ready = []
        while not self.events.empty():
            ready.append(self._decode(self.events.get_nowait()))
        return ready


def error_of(event: ErrorEvent) -> GatewayError:
    """The error a worker reported, as the edge raises it."""
    return rebuild(
        event.type,
        event.message,
        event.status,
        details=event.details,
        retry_after=event.retry_after,
    )
