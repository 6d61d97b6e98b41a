//! Local provisioning: tables created from the template's own definition.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_yaml::Value as Yaml;

use crate::template::Template;

fn text(y: &Yaml) -> String {
    y.as_str()
        .unwrap_or_else(|| panic!("expected a string in template.yaml, got {y:?}"))
        .to_owned()
}

fn key_schema(list: &Yaml) -> Vec<KeySchemaElement> {
    list.as_sequence()
        .expect("KeySchema is a list")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(&k["AttributeName"]))
                .key_type(KeyType::from(text(&k["KeyType"]).as_str()))
                .build()
                .expect("key schema element")
        })
        .collect()
}

/// Creates a table named `name` exactly as the template defines `Table`: the template is
/// the one source of truth for the schema.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    template: &Template,
    name: &str,
) -> Result<(), String> {
    let props = template.table_properties();
    let attributes = props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    text(&a["AttributeType"]).as_str(),
                ))
                .build()
                .expect("attribute definition")
        })
        .collect();
    let indexes = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|gsi| {
            GlobalSecondaryIndex::builder()
                .index_name(text(&gsi["IndexName"]))
                .set_key_schema(Some(key_schema(&gsi["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            text(&gsi["Projection"]["ProjectionType"]).as_str(),
                        ))
                        .build(),
                )
                .build()
                .expect("index")
        })
        .collect();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(text(&props["BillingMode"]).as_str()))
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&props["KeySchema"])))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .map_err(|e| format!("create table {name}: {}", DisplayErrorContext(&e)))?;
    let ttl = &props["TimeToLiveSpecification"];
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(text(&ttl["AttributeName"]))
                .enabled(ttl["Enabled"].as_bool().unwrap_or(false))
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .map_err(|e| format!("enable TTL on {name}: {}", DisplayErrorContext(&e)))?;
    Ok(())
}

/// Creates the table unless it exists (a second start of the local stack keeps its data).
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    template: &Template,
    name: &str,
) -> Result<bool, String> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(false),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            create_table(client, template, name).await.map(|()| true)
        }
        Err(e) => Err(format!(
            "describe table {name}: {}",
            DisplayErrorContext(&e)
        )),
    }
}
