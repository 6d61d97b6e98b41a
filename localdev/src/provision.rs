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

/// Writes `value` as the secret `name`: created, or given a new version if it exists.
pub async fn put_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Result<(), String> {
    let created = client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("update secret {name}: {}", DisplayErrorContext(&e)))
        }
        Err(e) => Err(format!("create secret {name}: {}", DisplayErrorContext(&e))),
    }
}

/// Creates every bucket the template defines, as `<prefix>-<logical id in kebab case>`,
/// unless it exists. Returns the names by logical id.
pub async fn ensure_buckets(
    client: &aws_sdk_s3::Client,
    template: &Template,
    prefix: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut buckets = Vec::new();
    for (logical_id, _) in template.resources_of_type("AWS::S3::Bucket") {
        let name = local_bucket_name(prefix, logical_id);
        if client.head_bucket().bucket(&name).send().await.is_err() {
            client
                .create_bucket()
                .bucket(&name)
                .send()
                .await
                .map_err(|e| format!("create bucket {name}: {}", DisplayErrorContext(&e)))?;
        }
        buckets.push((logical_id.to_owned(), name));
    }
    Ok(buckets)
}

/// `OfflineCodeBucket` → `<prefix>-offline-code-bucket`.
pub fn local_bucket_name(prefix: &str, logical_id: &str) -> String {
    let mut name = prefix.to_ascii_lowercase();
    for (i, c) in logical_id.chars().enumerate() {
        if i == 0 || c.is_ascii_uppercase() {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_kebab_case_and_prefixed() {
        assert_eq!(
            local_bucket_name("kincode-local", "OfflineCodeBucket"),
            "kincode-local-offline-code-bucket"
        );
        assert_eq!(local_bucket_name("k", "bucket"), "k-bucket");
    }
}
