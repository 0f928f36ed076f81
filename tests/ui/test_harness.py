"""The browser harness itself, in JupyterLab 4 and Notebook 7: a notebook opens, cells run,
ipywidgets render, values come back from the kernel, and widget state changed by a kernel
background thread while no cell runs reaches the page (what LiveTranscriber relies on)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui

SMOKE_CELLS = [
    # 0: a widget and a marker
    "import ipywidgets as widgets\n"
    "slider = widgets.IntSlider(value=3, min=0, max=10, description='livetx')\n"
    "display(slider)\n"
    "print('SMOKE-READY')",
    # 1: a thread that changes the widget later, when told to (no cell is running then)
    "import threading\n"
    "go = threading.Event()\n"
    "def bump():\n"
    "    if go.wait(30):\n"
    "        slider.value = 7\n"
    "bumper = threading.Thread(target=bump, name='bumper')\n"
    "bumper.start()\n"
    "print('THREAD-STARTED')",
]


def test_notebook_runs_cells_and_renders_widgets(jupyter, page, h):
    from playwright.sync_api import expect

    name = h.write_notebook(jupyter, f"smoke-{jupyter.kind}.ipynb", SMOKE_CELLS)
    h.open_notebook(page, jupyter, name)

    h.run_cell(page, 0)
    h.wait_for_output(page, "SMOKE-READY", cell=0)
    slider = h.cell(page, 0).locator(".jupyter-widgets.widget-slider")
    expect(slider).to_be_visible()
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("3")

    h.run_cell(page, 1)
    h.wait_for_output(page, "THREAD-STARTED", cell=1)
    h.wait_idle(page)
    # Told through the kernel socket, not a cell: the page is idle when the thread sets it.
    assert h.kernel_eval(jupyter, name, "go.set()\nbumper.join(10)\nbumper.is_alive()") is False
    expect(readout).to_have_text("7", timeout=h.OUTPUT_S * 1000)

    # A value read back through a new cell in the page.
    assert h.run_code(page, "slider.value * 10") == 70
    shot = h.screenshot(page, f"smoke-{jupyter.kind}")
    assert shot.stat().st_size > 10_000  # a blank page compresses to almost nothing


def test_helpers_fail_with_a_clear_message(lab_server, page, h):
    name = h.write_notebook(lab_server, "smoke-failures.ipynb", ["print('only this')"])
    h.open_notebook(page, lab_server, name)
    h.run_cell(page, 0)
    h.wait_for_output(page, "only this", cell=0)
    with pytest.raises(AssertionError, match="no output containing 'never printed'"):
        h.wait_for_output(page, "never printed", cell=0, timeout_s=1.0)
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        h.kernel_eval(lab_server, name, "1 / 0")


def test_a_notebook_without_a_kernelspec_gets_its_kernel_dialog_accepted(jupyter, page, h):
    name = h.write_notebook(
        jupyter, f"no-kernelspec-{jupyter.kind}.ipynb", ["print(6 * 7)"], kernelspec=False
    )
    h.open_notebook(page, jupyter, name)
    h.run_cell(page, 0)
    h.wait_for_output(page, "42", cell=0)
