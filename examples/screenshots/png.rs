//! Screenshots without a display: an `App` is drawn into a ratatui `TestBackend`
//! ([`render_buffer`]), the buffer becomes an SVG (one rectangle per run of background, one text element per cell,
//! box-drawing and block characters as shapes so lines join without seams), and `resvg`
//! rasterises it with an embedded DejaVu Sans Mono.

use std::fmt::Write as _;

use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};
use resvg::{tiny_skia, usvg};

use tether_tui::App;
use tether_tui::fixture::render_buffer;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono-Bold.ttf");
const FAMILY: &str = "DejaVu Sans Mono";

/// One cell, in SVG units. DejaVu Sans Mono advances 1233/2048 em, so 14.95 px gives
/// exactly 9 px per column: glyphs sit on the integer grid the backgrounds use.
const CELL_W: u32 = 9;
const CELL_H: u32 = 19;
const FONT_SIZE: f32 = 14.95;
const BASELINE: f32 = 14.5;

/// Colours `Color::Reset` stands for when the theme keeps the terminal's own.
const DEFAULT_FG: (u8, u8, u8) = (0xd8, 0xde, 0xe9);
const DEFAULT_BG: (u8, u8, u8) = (0x16, 0x18, 0x1d);

#[derive(Debug, thiserror::Error)]
pub enum ScreenshotError {
    #[error("drawing the screen failed: {0}")]
    Draw(String),
    #[error("the generated SVG did not parse: {0}")]
    Svg(String),
    #[error("cannot make a {0}×{1} image")]
    Size(u32, u32),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// A PNG of `app` at `width`×`height` cells, `scale` times the 9×19 px cell.
pub fn render_png(
    app: &App,
    width: u16,
    height: u16,
    scale: f32,
) -> Result<Vec<u8>, ScreenshotError> {
    let buffer = render_buffer(app, width, height).map_err(ScreenshotError::Draw)?;
    let svg = buffer_to_svg(&buffer);
    svg_to_png(&svg, scale)
}

pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, ScreenshotError> {
    let mut options = usvg::Options::default();
    options.fontdb_mut().load_font_data(FONT.to_vec());
    options.fontdb_mut().load_font_data(FONT_BOLD.to_vec());
    let tree =
        usvg::Tree::from_str(svg, &options).map_err(|e| ScreenshotError::Svg(e.to_string()))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or(ScreenshotError::Size(w, h))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| ScreenshotError::Png(e.to_string()))
}

/// The buffer as an SVG document.
pub fn buffer_to_svg(buffer: &Buffer) -> String {
    let area = buffer.area;
    let (w, h) = (area.width as u32 * CELL_W, area.height as u32 * CELL_H);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"{}\"/>\n<g shape-rendering=\"crispEdges\">\n",
        hex(DEFAULT_BG)
    );
    for y in 0..area.height {
        backgrounds(&mut svg, buffer, y);
    }
    svg.push_str("</g>\n");
    let _ = writeln!(
        svg,
        "<g font-family=\"{FAMILY}\" font-size=\"{FONT_SIZE}\" xml:space=\"preserve\">"
    );
    for y in 0..area.height {
        for x in 0..area.width {
            if let Some(cell) = buffer.cell((area.x + x, area.y + y)) {
                foreground(&mut svg, cell, x as u32 * CELL_W, y as u32 * CELL_H);
            }
        }
    }
    svg.push_str("</g>\n</svg>\n");
    svg
}

fn colours(cell: &Cell) -> ((u8, u8, u8), (u8, u8, u8)) {
    let fg = rgb(cell.fg, DEFAULT_FG);
    let bg = rgb(cell.bg, DEFAULT_BG);
    if cell.modifier.contains(Modifier::REVERSED) {
        (bg, fg)
    } else {
        (fg, bg)
    }
}

/// One rectangle per run of equal background in row `y`.
fn backgrounds(svg: &mut String, buffer: &Buffer, y: u16) {
    let area = buffer.area;
    let mut x = 0;
    while x < area.width {
        let bg = buffer.cell((area.x + x, area.y + y)).map(|c| colours(c).1);
        let start = x;
        while x < area.width && buffer.cell((area.x + x, area.y + y)).map(|c| colours(c).1) == bg {
            x += 1;
        }
        if let Some(bg) = bg.filter(|bg| *bg != DEFAULT_BG) {
            let _ = writeln!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{CELL_H}\" fill=\"{}\"/>",
                start as u32 * CELL_W,
                y as u32 * CELL_H,
                (x - start) as u32 * CELL_W,
                hex(bg)
            );
        }
    }
}

fn foreground(svg: &mut String, cell: &Cell, x: u32, y: u32) {
    let symbol = cell.symbol();
    let (fg, _) = colours(cell);
    let fill = hex(fg);
    let opacity = if cell.modifier.contains(Modifier::DIM) {
        0.6
    } else {
        1.0
    };
    if cell.modifier.contains(Modifier::UNDERLINED) {
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"{CELL_W}\" height=\"1\" fill=\"{fill}\" shape-rendering=\"crispEdges\"/>",
            y + CELL_H - 3
        );
    }
    let mut chars = symbol.chars();
    let (Some(ch), None) = (chars.next(), chars.next()) else {
        if !symbol.trim().is_empty() {
            text(svg, symbol, cell, x, y, &fill, opacity);
        }
        return;
    };
    if ch == ' ' {
        return;
    }
    if let Some(shape) = block_shape(ch, x, y, &fill).or_else(|| line_shape(ch, x, y, &fill)) {
        svg.push_str(&shape);
        return;
    }
    text(svg, symbol, cell, x, y, &fill, opacity);
}

fn text(svg: &mut String, symbol: &str, cell: &Cell, x: u32, y: u32, fill: &str, opacity: f32) {
    let weight = if cell.modifier.contains(Modifier::BOLD) {
        " font-weight=\"bold\""
    } else {
        ""
    };
    let escaped = symbol
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let _ = writeln!(
        svg,
        "<text x=\"{x}\" y=\"{}\" fill=\"{fill}\" fill-opacity=\"{opacity}\"{weight}>{escaped}</text>",
        y as f32 + BASELINE
    );
}

/// Block elements (sparklines, gauges, shades) as exact rectangles.
fn block_shape(ch: char, x: u32, y: u32, fill: &str) -> Option<String> {
    let (w, h) = (CELL_W as f32, CELL_H as f32);
    let (x, y) = (x as f32, y as f32);
    let rect = |rx: f32, ry: f32, rw: f32, rh: f32, opacity: f32| {
        format!(
            "<rect x=\"{rx}\" y=\"{ry}\" width=\"{rw}\" height=\"{rh}\" fill=\"{fill}\" fill-opacity=\"{opacity}\" shape-rendering=\"crispEdges\"/>\n"
        )
    };
    let code = ch as u32;
    Some(match code {
        // ▁▂▃▄▅▆▇█: lower n eighths.
        0x2581..=0x2588 => {
            let n = (code - 0x2580) as f32;
            let bar = (h * n / 8.0).round();
            rect(x, y + h - bar, w, bar, 1.0)
        }
        // ▉▊▋▌▍▎▏: left 7..1 eighths.
        0x2589..=0x258F => {
            let n = (0x2590 - code) as f32;
            rect(x, y, (w * n / 8.0).round(), h, 1.0)
        }
        0x2580 => rect(x, y, w, (h / 2.0).round(), 1.0),
        0x2590 => rect(x + (w / 2.0).round(), y, w - (w / 2.0).round(), h, 1.0),
        0x2591 => rect(x, y, w, h, 0.25),
        0x2592 => rect(x, y, w, h, 0.5),
        0x2593 => rect(x, y, w, h, 0.75),
        _ => return None,
    })
}

/// Weights of the four arms of a box-drawing character: 1 light, 2 heavy, 3 double.
fn arms(ch: char) -> Option<[u8; 4]> {
    // [left, right, up, down]
    Some(match ch {
        '─' => [1, 1, 0, 0],
        '│' => [0, 0, 1, 1],
        '┌' | '╭' => [0, 1, 0, 1],
        '┐' | '╮' => [1, 0, 0, 1],
        '└' | '╰' => [0, 1, 1, 0],
        '┘' | '╯' => [1, 0, 1, 0],
        '├' => [0, 1, 1, 1],
        '┤' => [1, 0, 1, 1],
        '┬' => [1, 1, 0, 1],
        '┴' => [1, 1, 1, 0],
        '┼' => [1, 1, 1, 1],
        '━' => [2, 2, 0, 0],
        '┃' => [0, 0, 2, 2],
        '┏' => [0, 2, 0, 2],
        '┓' => [2, 0, 0, 2],
        '┗' => [0, 2, 2, 0],
        '┛' => [2, 0, 2, 0],
        '┣' => [0, 2, 2, 2],
        '┫' => [2, 0, 2, 2],
        '┳' => [2, 2, 0, 2],
        '┻' => [2, 2, 2, 0],
        '╋' => [2, 2, 2, 2],
        '═' => [3, 3, 0, 0],
        '║' => [0, 0, 3, 3],
        '╔' => [0, 3, 0, 3],
        '╗' => [3, 0, 0, 3],
        '╚' => [0, 3, 3, 0],
        '╝' => [3, 0, 3, 0],
        _ => return None,
    })
}

/// Box-drawing characters as rectangles from the cell's centre to its edges, so lines
/// meet their neighbours exactly; rounded corners as a curved stroke.
fn line_shape(ch: char, x: u32, y: u32, fill: &str) -> Option<String> {
    let [left, right, up, down] = arms(ch)?;
    let (x, y, w, h) = (x as f32, y as f32, CELL_W as f32, CELL_H as f32);
    let (cx, cy) = (x + (w / 2.0).floor(), y + (h / 2.0).floor());
    if matches!(ch, '╭' | '╮' | '╰' | '╯') {
        let (hx, vy) = (
            if right > 0 { x + w } else { x },
            if down > 0 { y + h } else { y },
        );
        return Some(format!(
            "<path d=\"M{hx} {} L{} {} Q{} {} {} {} L{} {vy}\" fill=\"none\" stroke=\"{fill}\" stroke-width=\"1\"/>\n",
            cy + 0.5,
            if right > 0 { cx + 3.0 } else { cx - 2.0 },
            cy + 0.5,
            cx + 0.5,
            cy + 0.5,
            cx + 0.5,
            if down > 0 { cy + 3.5 } else { cy - 2.5 },
            cx + 0.5,
        ));
    }
    let mut out = String::new();
    let mut rect = |rx: f32, ry: f32, rw: f32, rh: f32| {
        let _ = writeln!(
            out,
            "<rect x=\"{rx}\" y=\"{ry}\" width=\"{rw}\" height=\"{rh}\" fill=\"{fill}\" shape-rendering=\"crispEdges\"/>"
        );
    };
    // Offsets of the strokes across an arm of each weight.
    let strokes = |weight: u8| -> &'static [(f32, f32)] {
        match weight {
            1 => &[(0.0, 1.0)],
            2 => &[(-0.5, 2.0)],
            3 => &[(-1.0, 1.0), (1.0, 1.0)],
            _ => &[],
        }
    };
    let thick = |weight: u8| if weight == 3 { 2.0 } else { weight as f32 };
    let reach_h = thick(up.max(down)) / 2.0;
    let reach_v = thick(left.max(right)) / 2.0;
    for &(off, size) in strokes(left) {
        rect(x, cy + off, cx - x + reach_h + 0.5, size);
    }
    for &(off, size) in strokes(right) {
        rect(
            cx - reach_h + 0.5,
            cy + off,
            x + w - (cx - reach_h + 0.5),
            size,
        );
    }
    for &(off, size) in strokes(up) {
        rect(cx + off, y, size, cy - y + reach_v + 0.5);
    }
    for &(off, size) in strokes(down) {
        rect(
            cx + off,
            cy - reach_v + 0.5,
            size,
            y + h - (cy - reach_v + 0.5),
        );
    }
    Some(out)
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A ratatui colour as RGB, with xterm's palette for named and indexed colours.
pub fn rgb(colour: Color, default: (u8, u8, u8)) -> (u8, u8, u8) {
    const ANSI: [(u8, u8, u8); 16] = [
        (0x00, 0x00, 0x00),
        (0xcd, 0x00, 0x00),
        (0x00, 0xcd, 0x00),
        (0xcd, 0xcd, 0x00),
        (0x00, 0x00, 0xee),
        (0xcd, 0x00, 0xcd),
        (0x00, 0xcd, 0xcd),
        (0xe5, 0xe5, 0xe5),
        (0x7f, 0x7f, 0x7f),
        (0xff, 0x00, 0x00),
        (0x00, 0xff, 0x00),
        (0xff, 0xff, 0x00),
        (0x5c, 0x5c, 0xff),
        (0xff, 0x00, 0xff),
        (0x00, 0xff, 0xff),
        (0xff, 0xff, 0xff),
    ];
    let indexed = |i: u8| -> (u8, u8, u8) {
        match i {
            0..=15 => ANSI[i as usize],
            16..=231 => {
                let i = i - 16;
                let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
                (level(i / 36), level(i / 6 % 6), level(i % 6))
            }
            _ => {
                let v = 8 + (i - 232) * 10;
                (v, v, v)
            }
        }
    };
    match colour {
        Color::Reset => default,
        Color::Black => ANSI[0],
        Color::Red => ANSI[1],
        Color::Green => ANSI[2],
        Color::Yellow => ANSI[3],
        Color::Blue => ANSI[4],
        Color::Magenta => ANSI[5],
        Color::Cyan => ANSI[6],
        Color::Gray => ANSI[7],
        Color::DarkGray => ANSI[8],
        Color::LightRed => ANSI[9],
        Color::LightGreen => ANSI[10],
        Color::LightYellow => ANSI[11],
        Color::LightBlue => ANSI[12],
        Color::LightMagenta => ANSI[13],
        Color::LightCyan => ANSI[14],
        Color::White => ANSI[15],
        Color::Indexed(i) => indexed(i),
        Color::Rgb(r, g, b) => (r, g, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_tui::fixture;

    #[test]
    fn a_screen_becomes_a_png() {
        let app = fixture::demo_app(None, 60, 15);
        let png = render_png(&app, 60, 15, 1.0).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = buffer_to_svg(&render_buffer(&app, 60, 15).unwrap());
        assert!(svg.contains(FAMILY));
        assert!(svg.contains("<text"));
    }

    #[test]
    fn lines_meet_at_the_cell_edges() {
        let s = line_shape('─', 0, 0, "#fff").unwrap();
        assert!(s.contains("x=\"0\"") && s.contains("width=\"4.5\""), "{s}");
        assert!(line_shape('a', 0, 0, "#fff").is_none());
        assert!(
            block_shape('█', 0, 0, "#fff")
                .unwrap()
                .contains("height=\"19\"")
        );
    }

    #[test]
    fn palette_colours_map_to_rgb() {
        assert_eq!(rgb(Color::Indexed(196), (0, 0, 0)), (255, 0, 0));
        assert_eq!(rgb(Color::Indexed(244), (0, 0, 0)), (128, 128, 128));
        assert_eq!(rgb(Color::Reset, (1, 2, 3)), (1, 2, 3));
    }
}
