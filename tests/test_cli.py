"""The console scripts of pyproject.toml point at working command lines."""

import pathlib
import sys
import tomllib

import pytest

from rawjax import _cli

PYPROJECT = pathlib.Path(__file__).resolve().parents[1] / 'pyproject.toml'


def _scripts():
  return tomllib.loads(PYPROJECT.read_text())['project']['scripts']


def test_every_script_names_a_function_of_the_cli_module():
  scripts = _scripts()
  assert set(scripts) == {'rawjax-align', 'rawjax-convert',
                          'rawjax-baselines', 'rawjax-simulate'}
  for target in scripts.values():
    module, name = target.split(':')
    assert module == 'rawjax._cli'
    assert callable(getattr(_cli, name))


@pytest.mark.parametrize('name', ['align', 'convert', 'baselines',
                                  'simulate'])
def test_scripts_run_the_module_command_line(name, monkeypatch, capsys):
  monkeypatch.setattr(sys, 'argv', [f'rawjax-{name}', '--help'])
  with pytest.raises(SystemExit) as exit_info:
    getattr(_cli, name)()
  assert exit_info.value.code == 0
  assert 'usage:' in capsys.readouterr().out
