"""`python -m rawjax.data.synthetic`: see `rawjax.data.synthetic.cli`."""

from rawjax.data.synthetic.cli import main

if __name__ == '__main__':
  main()
