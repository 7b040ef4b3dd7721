//! Printing results: columns for people, JSON or YAML for programs.

use faas_core::FunctionStatus;
use serde::Serialize;

use super::{Failure, Output, exit};

/// Prints `value` as JSON or YAML.
pub(super) fn print<T: Serialize>(value: &T, format: Output) -> Result<(), Failure> {
    let text = match format {
        Output::Yaml => serde_saphyr::to_string(value)
            .map_err(|e| Failure::new(exit::FAILED, format!("writing YAML: {e}")))?,
        _ => {
            let mut text = serde_json::to_string_pretty(value)
                .map_err(|e| Failure::new(exit::FAILED, format!("writing JSON: {e}")))?;
            text.push('\n');
            text
        }
    };
    print!("{text}");
    Ok(())
}

fn ready_text(status: &FunctionStatus) -> &'static str {
    if status.is_ready() { "True" } else { "False" }
}

/// Rows of `list` as aligned columns.
pub(super) fn render_table(list: &[FunctionStatus], with_namespace: bool) -> String {
    let mut rows = vec![
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "REASON",
            "REPLICAS",
            "AVAILABLE",
            "IMAGE",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for status in list {
        rows.push(vec![
            status.namespace.clone().unwrap_or_default(),
            status.name.clone(),
            ready_text(status).to_owned(),
            status.reason.clone().unwrap_or_default(),
            status.replicas.to_string(),
            status.available_replicas.to_string(),
            status.image.clone().unwrap_or_default(),
        ]);
    }
    let skip = usize::from(!with_namespace);
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(column, cell)| format!("{cell:<width$}", width = widths[column]))
            .collect();
        text.push_str(cells.join("   ").trim_end());
        text.push('\n');
    }
    text
}

/// Prints `list` as columns.
pub(super) fn table(list: &[FunctionStatus], with_namespace: bool) -> Result<(), Failure> {
    print!("{}", render_table(list, with_namespace));
    Ok(())
}

/// Prints one function's status for a person.
pub(super) fn describe(status: &FunctionStatus) -> Result<(), Failure> {
    let mut lines = vec![
        format!("Name:        {}", status.name),
        format!("Namespace:   {}", status.namespace.as_deref().unwrap_or("")),
        format!("Image:       {}", status.image.as_deref().unwrap_or("")),
        format!(
            "Ready:       {} ({})",
            ready_text(status),
            status.reason.as_deref().unwrap_or("unknown")
        ),
        format!("Message:     {}", status.message.as_deref().unwrap_or("")),
        format!(
            "Replicas:    {} wanted, {} available",
            status.replicas, status.available_replicas
        ),
        format!(
            "Invocations: {} (answered by its running pods)",
            status.invocation_count
        ),
    ];
    for trigger in &status.triggers {
        lines.push(format!(
            "Trigger:     {}",
            serde_json::to_string(trigger).unwrap_or_default()
        ));
    }
    for (key, value) in &status.labels {
        lines.push(format!("Label:       {key}={value}"));
    }
    println!("{}", lines.join("\n"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let status = FunctionStatus::new("hello")
            .with_namespace("apps")
            .with_image("img")
            .with_replicas(2, 1)
            .with_readiness(false, "Progressing", "1 of 2", false);
        let text = render_table(&[status], false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(lines[1].starts_with("hello"), "{text}");
        assert_eq!(
            lines[0].find("READY"),
            lines[1].find("False"),
            "aligned: {text}"
        );
        assert!(render_table(&[], true).starts_with("NAMESPACE"));
    }
}
