"""Fake environments for tests, yours and ours."""

from flare.testing.envs import ChainEnv, CrashingEnv, PatternImageEnv

__all__ = ["ChainEnv", "CrashingEnv", "PatternImageEnv"]
