"""Tenancy rules: plans, quotas, rate limits — pure logic, no I/O."""

from __future__ import annotations

from nexus.tenancy.plans import DEFAULT_PLAN, GIB, PLANS, Limits, Plan, effective_limits
from nexus.tenancy.ratelimit import RateLimiter

__all__ = ["DEFAULT_PLAN", "GIB", "PLANS", "Limits", "Plan", "RateLimiter", "effective_limits"]
