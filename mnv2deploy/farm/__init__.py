"""Benchmarks on hosted phones: ``bench ARTIFACT --farm aws --device NAME ...`` and ``farm devices``.

base.py is the farm interface (the registry a second farm plugs into), aws.py the AWS Device Farm client flow,
package.py the test package and spec, results.py the parsing of what the farm returns into BenchResult.
"""

from .base import FARMS, Farm, FarmDevice, FarmError, FarmInterrupted, FarmJob, FarmPlan, FarmRun, get_farm

__all__ = ["FARMS", "Farm", "FarmDevice", "FarmError", "FarmInterrupted", "FarmJob", "FarmPlan", "FarmRun",
           "get_farm"]
