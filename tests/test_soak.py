"""A short soak (make soak runs the long one): saturation load at two of
five servers while neighbours are killed, restarted, frozen and thawed.
No server dies (libzmq's "_input_stopped" assertion once took two), and
all five converge after."""

from soak import soak


def test_no_server_dies_under_load_while_neighbours_come_and_go(herd):
    lines = soak(herd, seconds=15, report=lambda line: None)
    for line in lines:
        assert " 0 connections failed" in line, line
    herd.wait_converged(timeout=60)
