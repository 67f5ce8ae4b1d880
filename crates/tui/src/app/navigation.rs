//! Moving around: the selection, table scrolling, detail tabs and scrolling, and the
//! mouse (click selects a row or a tab, the wheel scrolls what is under it).

use super::{App, Focus, Overlay};
use crate::action::{Command, DetailTab};
use crate::ui;

impl App {
    pub(super) fn show_tab(&mut self, tab: DetailTab) {
        if self.tab != tab {
            self.tab = tab;
            self.reset_detail();
        }
    }

    /// Another connection or tab: the detail pane starts at its top, the Calls tab
    /// following the newest call.
    pub(super) fn reset_detail(&mut self) {
        self.detail_scroll = 0;
        self.client_row = 0;
        self.tab_calls.follow();
        self.tab_calls.filter.editing = false;
    }

    pub(super) fn move_or_scroll(&mut self, step: isize) {
        match self.focus {
            Focus::Table => self.move_selection(step),
            Focus::Detail if self.tab == DetailTab::Calls => {
                let rows = self.call_rows(false);
                self.tab_calls.move_by(&rows, step);
            }
            Focus::Detail if self.tab == DetailTab::Clients => {
                let len = self.selected_connection().map_or(0, |c| c.access.len());
                self.client_row = clamp_add(self.client_row, step, len);
            }
            Focus::Detail => {
                let len = ui::detail_len(self);
                self.detail_scroll = clamp_add(self.detail_scroll as usize, step, len) as u16;
            }
        }
    }

    pub(super) fn move_selection(&mut self, step: isize) {
        let names: Vec<String> = self.visible().iter().map(|c| c.name.to_string()).collect();
        if names.is_empty() {
            self.selected = None;
            return;
        }
        let at = self.selected_index().unwrap_or(0);
        let to = clamp_add(at, step, names.len());
        if to != at || self.selected.is_none() {
            self.reset_detail();
        }
        self.selected = Some(names[to].clone());
        self.keep_selection_visible();
    }

    /// Keeps the selection on a visible connection (the first one if it vanished).
    pub(super) fn fix_selection(&mut self) {
        if self.selected_index().is_none() {
            self.selected = self.visible().first().map(|c| c.name.to_string());
            self.reset_detail();
            if self.selected.is_none() {
                self.focus = Focus::Table;
            }
        }
        self.keep_selection_visible();
    }

    pub(super) fn keep_selection_visible(&mut self) {
        let rows = ui::layout(self.area, self).table_rows.max(1) as usize;
        let len = self.visible().len();
        let at = self.selected_index().unwrap_or(0);
        if at < self.table_offset {
            self.table_offset = at;
        } else if at >= self.table_offset + rows {
            self.table_offset = at + 1 - rows;
        }
        self.table_offset = self.table_offset.min(len.saturating_sub(rows));
    }

    pub(super) fn click(&mut self, column: u16, row: u16) {
        if !matches!(self.overlay, Overlay::None) {
            return;
        }
        let regions = ui::layout(self.area, self);
        if let Some(index) = regions.table_row_at(column, row) {
            let target = self.table_offset + index;
            if let Some(c) = self.visible().get(target) {
                let name = c.name.to_string();
                if self.selected.as_deref() != Some(&name) {
                    self.reset_detail();
                }
                self.selected = Some(name);
                self.focus = Focus::Table;
                self.tab_calls.filter.editing = false;
            }
        } else if let Some(tab) = regions.tab_at(column, row) {
            self.show_tab(tab);
        } else if regions.detail.contains((column, row).into()) && self.selected.is_some() {
            self.focus = Focus::Detail;
        }
    }

    pub(super) fn wheel(&mut self, column: u16, row: u16, down: bool) {
        let step = if down { 1 } else { -1 };
        let command = if down { Command::Down } else { Command::Up };
        match &self.overlay {
            Overlay::Help { .. }
            | Overlay::Events { .. }
            | Overlay::Calls
            | Overlay::Call { .. } => {
                self.command(command);
            }
            Overlay::None => {
                let regions = ui::layout(self.area, self);
                if regions.table.contains((column, row).into()) {
                    self.move_selection(step);
                } else if regions.detail.contains((column, row).into()) {
                    let focus = std::mem::replace(&mut self.focus, Focus::Detail);
                    self.move_or_scroll(step * 3);
                    self.focus = focus;
                }
            }
            _ => {}
        }
    }
}

pub(super) fn clamp_add(at: usize, step: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (at as isize)
        .saturating_add(step)
        .clamp(0, len as isize - 1) as usize
}
