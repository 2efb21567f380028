"""Inside the model and presenter mode in a real browser (Playwright driving Debian's Chromium) against a
real server: presenter mode on, a stage opened from the image diagram by a click and Grad-CAM by depth
asked for, a head and a token picked on the text page, presenter mode still on there; the image + text
page's embedding space for the photos and prompts it explained. Screenshots land in test-artifacts/."""

from __future__ import annotations

from playwright.sync_api import expect

from browser_steps import SLOW, add_options, new_user, open_page
from conftest import screenshot


def pick(page, label: str, option: str) -> None:
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))
    box.get_by_role("combobox").click()
    box.get_by_role("combobox").press_sequentially(option)  # typing filters the list to the option
    page.get_by_role("option").get_by_text(option, exact=True).click()


def figure_font(page, title_start: str) -> float:
    """The font size Plotly drew a figure with, found by the start of its title (Streamlit wraps it in <b>)."""
    return page.evaluate(
        """(start) => {
            const plot = [...document.querySelectorAll('.js-plotly-plot')]
                .find(p => (p._fullLayout.title.text || '').replace(/<[^>]+>/g, '').startsWith(start));
            return plot ? plot._fullLayout.font.size : null;
        }""", title_start)


def test_presenter_walks_through_the_image_and_text_models(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")  # the cat is the first sample
        page.get_by_text("Presenter mode", exact=True).click()
        page.get_by_text("Show the network itself: its stages", exact=False).click()
        diagram = page.locator(".js-plotly-plot").filter(has_text="click a stage")
        expect(diagram).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("head conv: its 16 most active of 1280 channels")).to_be_visible(timeout=SLOW)
        assert figure_font(page, "EfficientNet-Lite0") == 20  # presenter mode draws for the projector
        # A click on the first box of the diagram (the stem) opens it, with the first convolution's filters.
        diagram.scroll_into_view_if_needed()
        box = diagram.locator(".scatterlayer .trace").nth(1).locator(".point").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.get_by_text("stem: its 16 most active of 32 channels")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("The first convolution's 32 filters")).to_be_visible(timeout=60_000)
        screenshot(page, "inside-image-stem")
        # Grad-CAM by depth when asked: one map per stage, for the class the page explained.
        page.get_by_text("Grad-CAM for the explained class at every stage", exact=False).click()
        depth = page.locator(".js-plotly-plot").filter(has_text="at every depth")
        expect(depth).to_be_visible(timeout=SLOW)
        expect(depth.locator(".heatmaplayer .hm")).to_have_count(9)
        depth.scroll_into_view_if_needed()
        screenshot(page, "inside-image-depth")

        open_page(page, "Text (BERT)")
        expect(page.get_by_role("switch", name="Presenter mode").or_(
            page.get_by_role("checkbox", name="Presenter mode"))).to_be_checked()  # still on, another page
        page.get_by_text("Show the network itself: tokens", exact=False).click()
        page.get_by_role("tab", name="Attention step by step").click()
        expect(page.get_by_text("Layer 6, head 1: how #1 the spreads its attention")).to_be_visible(timeout=SLOW)
        pick(page, "Head", "head 3")
        pick(page, "Query token", "#2 movie")
        expect(page.get_by_text("Layer 6, head 3: how #2 movie spreads its attention")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Layer 6, head 3: its attention map, every row computed this way (row #2 outlined)")
               ).to_be_visible()
        assert figure_font(page, "Layer 6, head 3: how") == 20
        screenshot(page, "inside-text-step-by-step")


def test_the_image_text_page_shows_its_embedding_space(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Image + text (CLIP)")
        add_options(page, "Sample photos", ["Cat (Chelsea)"])  # after the astronaut
        page.get_by_role("textbox", name="Prompts, one per line").fill("an astronaut\na cat\na rocket")
        page.get_by_role("button", name="Explain", exact=True).click()
        expect(page.get_by_text("Which prompt fits the image").first).to_be_visible(timeout=SLOW)
        page.get_by_text("Show the shared embedding space", exact=False).click()
        space = page.locator(".js-plotly-plot").filter(has_text="in the shared embedding space")
        expect(space).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("Not a learned image embedding", exact=False)).to_be_visible()  # ConSE, offline
        # The two photos and three prompts are placed, each named.
        placed = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]
            .find(p => (p._fullLayout.title.text || '').includes('shared embedding space'))
            ._fullData.filter(trace => trace.name === 'photos' || trace.name === 'prompts')
            .map(trace => [trace.name, [...trace.text]]))""")
        assert placed == {"photos": ["Astronaut (Eileen Collins)", "Cat (Chelsea)"],
                          "prompts": ["a photo of an astronaut", "a photo of a cat", "a photo of a rocket"]}, placed
        expect(page.locator(".js-plotly-plot").filter(has_text="how similarities become probabilities")).to_be_visible()
        pick(page, "Photo", "Cat (Chelsea)")
        expect(page.locator(".js-plotly-plot").filter(
            has_text="Cat (Chelsea): how similarities become probabilities")).to_be_visible(timeout=60_000)
        screenshot(page, "inside-clip")
