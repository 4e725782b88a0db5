from playwright.sync_api import expect

from lab import NotebookPage, browser_page


def test_slider_round_trip(jupyter_server, browser):
    with browser_page(browser, "slider") as (page, errors):
        name = jupyter_server.write_notebook(
            "slider.ipynb", ["import ipywidgets\ns = ipywidgets.IntSlider(value=3, description='Level')\ns"]
        )
        notebook = NotebookPage(page, errors, jupyter_server, name).open()
        notebook.run_all()
        handle = page.locator(".widget-slider .ui-slider-handle, .widget-slider .noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowRight")
        assert notebook.execute("print('VALUE', s.value)") == "VALUE 4"
        notebook.execute("s.value = 7")
        expect(page.locator(".widget-readout").first).to_have_text("7")
        errors.assert_no_uncaught()
