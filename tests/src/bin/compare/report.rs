//! One table (a row per measurement, a column per subject, then Lanyard's ratio to each other
//! subject) and the same figures as an SVG chart written by hand: one small bar group per row,
//! each scaled to its own row's largest value, since rows mix microseconds, seconds and MB.

use std::fmt::Write as _;

use crate::measure::{Better, Cell, Measure};

pub struct Row {
    pub label: String,
    pub unit: &'static str,
    pub better: Better,
    pub cells: Vec<Cell>,
}

pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(columns: Vec<&'static str>) -> Self {
        Table { columns, rows: Vec::new() }
    }

    /// Puts `measures` in `column`, each in the row of its label (a new row at the end if none).
    pub fn add(&mut self, column: usize, measures: Vec<Measure>) {
        for m in measures {
            let index = match self.rows.iter().position(|r| r.label == m.label) {
                Some(index) => index,
                None => {
                    let cells = vec![Cell::missing("-"); self.columns.len()];
                    self.rows.push(Row { label: m.label.clone(), unit: m.unit, better: m.better, cells });
                    self.rows.len() - 1
                }
            };
            self.rows[index].cells[column] = m.cell;
        }
    }

    /// The table, with "Lanyard / X" ratios (column 0 against each other column).
    pub fn render(&self) -> String {
        let mut out = format!("{:<50} {:>4} {:>5}", "measurement", "unit", "best");
        for c in &self.columns {
            let _ = write!(out, " {c:>19}");
        }
        for c in &self.columns[1..] {
            let _ = write!(out, " {:>10}", format!("L/{}", c.split(' ').next().unwrap_or(c)));
        }
        out.push('\n');
        for row in &self.rows {
            let best = if row.better == Better::Lower { "low" } else { "high" };
            let _ = write!(out, "{:<50} {:>4} {best:>5}", row.label, row.unit);
            for cell in &row.cells {
                let _ = write!(out, " {:>19}", cell_text(cell));
            }
            for cell in &row.cells[1..] {
                let ratio = match (row.cells[0].value, cell.value) {
                    (Some(l), Some(o)) if o > 0.0 => ratio_text(l / o),
                    _ => "-".into(),
                };
                let _ = write!(out, " {ratio:>10}");
            }
            out.push('\n');
        }
        out
    }

    /// The chart as a standalone SVG document.
    pub fn svg(&self, title: &str) -> String {
        const WIDTH: f64 = 980.0;
        const LABEL_W: f64 = 380.0;
        const BAR_H: f64 = 11.0;
        const COLORS: [&str; 4] = ["#1b7837", "#2166ac", "#b2182b", "#999999"];
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.cells.iter().any(|c| c.value.is_some())).collect();
        let block = BAR_H * self.columns.len() as f64 + 10.0;
        let height = 70.0 + block * rows.len() as f64;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
            xml(title)
        );
        for (i, column) in self.columns.iter().enumerate() {
            let x = 10.0 + 160.0 * i as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{x}\" y=\"32\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"41\">{}</text>",
                COLORS[i % COLORS.len()],
                x + 14.0,
                xml(column)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"41\" fill=\"#555\">bars scaled per row; missing bar: no figure</text>",
            10.0 + 160.0 * self.columns.len() as f64
        );
        for (r, row) in rows.iter().enumerate() {
            let top = 55.0 + block * r as f64;
            let best = if row.better == Better::Lower { "lower is better" } else { "higher is better" };
            let _ = writeln!(
                s,
                "<text x=\"10\" y=\"{}\">{}</text><text x=\"10\" y=\"{}\" fill=\"#555\">{}, {best}</text>",
                top + 10.0,
                xml(&row.label),
                top + 23.0,
                xml(row.unit)
            );
            let max = row.cells.iter().filter_map(|c| c.value).fold(0.0, f64::max);
            for (i, cell) in row.cells.iter().enumerate() {
                let y = top + BAR_H * i as f64;
                let w = cell.value.map_or(0.0, |v| if max > 0.0 { v / max * (WIDTH - LABEL_W - 140.0) } else { 0.0 });
                let _ = writeln!(
                    s,
                    "<rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>\
                     <text x=\"{:.1}\" y=\"{}\" font-size=\"9\">{}</text>",
                    BAR_H - 2.0,
                    COLORS[i % COLORS.len()],
                    LABEL_W + w + 4.0,
                    y + BAR_H - 3.0,
                    xml(&cell_text(cell))
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A figure with three significant-ish digits, and its note.
pub fn cell_text(cell: &Cell) -> String {
    let value = cell.value.map(|v| match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    });
    match (value, &cell.note) {
        (Some(v), Some(n)) => format!("{v} ({n})"),
        (Some(v), None) => v,
        (None, Some(n)) => n.clone(),
        (None, None) => "-".into(),
    }
}

/// Two decimals, more for small ratios (a 0.00x would hide a factor of a thousand).
fn ratio_text(r: f64) -> String {
    match r {
        r if r >= 0.1 => format!("{r:.2}x"),
        r if r >= 0.001 => format!("{r:.4}x"),
        r => format!("{r:.1e}x"),
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_by_label_and_ratios_use_the_first_column() {
        let m = |v| vec![Measure { label: "x".into(), unit: "us", better: Better::Lower, cell: Cell::value(v) }];
        let mut t = Table::new(vec!["A", "B", "C"]);
        t.add(0, m(2.0));
        t.add(1, m(4.0));
        assert_eq!(t.rows.len(), 1);
        let text = t.render();
        assert!(text.contains("0.50x"), "{text}");
        assert!(t.svg("t & <u>").contains("t &amp; &lt;u&gt;"));
    }
}
