import numpy as np

from backtester.core import memory


def test_columns_is_a_float_block_and_leaves_numpys_advice_as_it_was() -> None:
    switch = memory._SWITCH
    assert switch is not None  # the numpy this project pins has it
    for advised in (True, False):
        switch(advised)
        block = memory.columns(3, 600_000)  # above numpy's 4 MB threshold for the advice
        assert block.shape == (3, 600_000)
        assert block.dtype == np.float64
        assert block.flags.c_contiguous
        assert block.flags.writeable
        assert switch(True) is advised
