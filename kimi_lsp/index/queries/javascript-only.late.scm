; JavaScript only (TypeScript has public_field_definition and extends_clause).
(field_definition property: (property_identifier) @name) @definition.field
(class_heritage (identifier) @name) @reference.class
