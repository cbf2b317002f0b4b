"""OpenMP threads wait passively unless the user chose a policy; too late once torch is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

from dagrad.utils.threads import prefer_passive_wait


def test_passive_unless_the_user_chose():
    env: dict[str, str] = {}
    assert prefer_passive_wait(env, torch_loaded=False) == "dagrad" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert prefer_passive_wait(env, torch_loaded=False) == "user" and env["OMP_WAIT_POLICY"] == "ACTIVE"
    env = {}
    assert prefer_passive_wait(env, torch_loaded=True) == "too late" and env == {}


def test_importing_dagrad_sets_the_policy_before_torch_starts():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import dagrad, os, sys; from dagrad.utils.threads import wait_policy; "
            "print(os.environ['OMP_WAIT_POLICY'], wait_policy()['set_by'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "dagrad", "False"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE", "user", "False"]
