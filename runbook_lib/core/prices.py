"""The price table: AWS prices kept as data, each with where and when it was read.

data/prices.json holds each AWS price with its source, its Region and the date it was read (`assumed` when
no stored source showed the figure), and the figures no price page gives (the assumptions). This module
loads it into typed records and looks a price up by key and Region; the estimate (costs.py) reads prices
only through it, so a price's provenance travels with the figure into every row that uses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .resource_types import Source

ANY_REGION = "*"  # a price the source gives for every Region
READ, SECONDARY, ASSUMED = "read", "secondary", "assumed"


@dataclass(frozen=True)
class Price:
    """One price of the table, for one Region (or ANY_REGION), with where it was read and when."""

    key: str
    what: str
    region: str
    value: float
    unit: str
    currency: str
    source: Source
    read: str
    status: str
    seen_in: Source | None = None
    note: str = ""

    def citation(self, links: bool = True) -> str:
        """The price, its source and the date it was read; `links` false writes addresses without their
        scheme (report.html loads and links nothing)."""
        where = "every Region" if self.region == ANY_REGION else self.region
        text = f"{self.what}, {where}: ${self.value:g} per {self.unit}. Source: {_cite(self.source, links)}"
        if self.status == READ:
            text += f", read {self.read}"
        elif self.status == SECONDARY and self.seen_in is not None:
            text += f" (its figures are drawn by script); read {self.read} in {_cite(self.seen_in, links)}"
        else:
            text += "; assumed: the best-known figure, not read from a source (check it on the AWS page)"
        return text + (f". Note: {self.note}" if self.note else "")


def _cite(source: Source, links: bool) -> str:
    return f"{source.title}, {source.url if links else re.sub(r'^[a-z]+://', '', source.url)}"


@dataclass(frozen=True)
class Assumption:
    """A figure the estimate needs that no price page gives (how many KMS requests a job makes)."""

    value: float
    unit: str
    status: str
    note: str


@dataclass(frozen=True)
class PriceTable:
    """The prices by (key, Region), the assumptions, and the hours of the month the estimate bills by."""

    prices: Mapping[tuple[str, str], Price]
    assumptions: Mapping[str, Assumption]
    hours_per_month: float
    currency: str

    def price(self, key: str, region: str) -> Price | None:
        """The price for the Region, or the one for every Region, or None: no price for that Region."""
        return self.prices.get((key, region)) or self.prices.get((key, ANY_REGION))

    def assumed(self, name: str) -> float:
        """The value of an assumption (drill_hours, kms_requests_per_job_and_key)."""
        return self.assumptions[name].value

    @property
    def days_per_month(self) -> float:
        """The days of the month the table bills by."""
        return self.hours_per_month / 24


def parse(data: Mapping[str, Any]) -> PriceTable:
    """The price table of prices.json's content."""
    sources = {key: Source(**value) for key, value in data["sources"].items()}
    prices: dict[tuple[str, str], Price] = {}
    for entry in data["prices"]:
        for region, found in entry["regions"].items():
            prices[entry["key"], region] = Price(
                entry["key"],
                entry["what"],
                region,
                float(found["value"]),
                entry["unit"],
                data["currency"],
                sources[entry["source"]],
                found["read"],
                found["status"],
                sources[found["seen_in"]] if found.get("seen_in") else None,
                entry.get("note", ""),
            )
    assumptions = {name: Assumption(**value) for name, value in data["assumptions"].items()}
    return PriceTable(prices, assumptions, float(data["hours_per_month"]), data["currency"])


def load() -> PriceTable:
    """The price table the package ships (data/prices.json)."""
    return parse(json.loads(resources.files("runbook_lib").joinpath("data/prices.json").read_text()))


PRICES = load()
