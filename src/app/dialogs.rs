//! Modal dialogs (`<dialog>`: the browser keeps the focus inside, Escape
//! closes it, the page behind is inert): a titled frame with a Close button,
//! and the list of the viewer's shortcuts.

use leptos::html;
use leptos::prelude::*;

use super::keys::SHORTCUTS;

/// Opens the dialog `dialog` refers to.
pub fn show(dialog: NodeRef<html::Dialog>) {
    if let Some(dialog) = dialog.get_untracked()
        && !dialog.open()
    {
        // Only a dialog that is not in the document fails to open.
        let _ = dialog.show_modal();
    }
}

/// A modal dialog with a title and a Close button.
#[component]
pub fn Dialog(
    /// Refers to the dialog, for [`show`].
    dialog: NodeRef<html::Dialog>,
    /// The title.
    title: &'static str,
    /// The dialog's `data-testid` (its Close button's is `<testid>-close`).
    testid: &'static str,
    /// The contents.
    children: Children,
) -> impl IntoView {
    let heading = format!("{testid}-title");
    let labelled_by = heading.clone();
    view! {
        <dialog node_ref=dialog class="dialog" data-testid=testid aria-labelledby=labelled_by
            closedby="any">
            <div class="dialog-head">
                <h2 id=heading>{title}</h2>
                <button data-testid=format!("{testid}-close")
                    on:click=move |_| if let Some(d) = dialog.get_untracked() { d.close() }>
                    "Close"
                </button>
            </div>
            <div class="dialog-body">{children()}</div>
        </dialog>
    }
}

/// The list of the viewer's keyboard and pointer shortcuts.
#[component]
pub fn ShortcutsDialog(
    /// Refers to the dialog.
    dialog: NodeRef<html::Dialog>,
) -> impl IntoView {
    let rows = SHORTCUTS
        .iter()
        .map(|s| view! { <tr><th scope="row"><kbd>{s.shown}</kbd></th><td>{s.does}</td></tr> })
        .collect_view();
    view! {
        <Dialog dialog title="Keyboard and pointer" testid="shortcuts">
            <table class="shortcuts">
                <caption class="visually-hidden">"Shortcuts of the views"</caption>
                <tbody>{rows}</tbody>
            </table>
            <p class="note">
                "Keys act on the focused view (Tab moves the focus through them), else on the view "
                "under the pointer, else on the large one."
            </p>
        </Dialog>
    }
}
