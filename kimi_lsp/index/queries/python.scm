; kimi-lsp additions for Python (before upstream tags.scm; the first pattern decides the kind).
; Methods are functions inside a class (decided in extract.py); constants vs variables by case.

(type_alias_statement (type (identifier) @name)) @definition.type

(class_definition
  body: (block
    (expression_statement
      (assignment left: (identifier) @name)) @definition.field))

(import_statement name: (dotted_name) @import)
(import_statement name: (aliased_import name: (dotted_name) @import))
(import_from_statement module_name: (_) @import)
(import_from_statement name: (dotted_name) @import.member)
(import_from_statement name: (aliased_import name: (dotted_name) @import.member))

(import_from_statement name: (dotted_name (identifier) @name) @reference.import)
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @name)) @reference.import)

(class_definition superclasses: (argument_list (identifier) @name) @reference.class)
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @name)) @reference.class)
(type (identifier) @name) @reference.type
(type (attribute attribute: (identifier) @name)) @reference.type
(decorator (identifier) @name) @reference.call
(decorator (call function: (identifier) @name)) @reference.call
