"""Build with colcon (ament_python) or pip; everything is declared in setup.cfg."""
from setuptools import setup

setup()
