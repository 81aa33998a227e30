"""Request body schemas of the operations the sandbox serves.

Copied from shared/frameio-v4-openapi.json (descriptions and examples dropped);
tests/contract/test_spec_sync.py checks they still match it.
"""

from typing import Any

REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "files.move": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {"parent_id": {"type": "string"}},
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "files.update": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {"name": {"maxLength": 255, "minLength": 1, "type": "string"}},
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "comments.create": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {
                    "anchor": {
                        "allOf": [
                            {
                                "properties": {
                                    "x": {
                                        "format": "float",
                                        "maximum": 1.0,
                                        "minimum": 0.0,
                                        "type": "number",
                                    },
                                    "y": {
                                        "format": "float",
                                        "maximum": 1.0,
                                        "minimum": 0.0,
                                        "type": "number",
                                    },
                                },
                                "required": ["x", "y"],
                                "type": "object",
                            }
                        ],
                        "nullable": True,
                        "type": "object",
                    },
                    "annotation": {"maxLength": 200000, "nullable": True, "type": "string"},
                    "attachments": {
                        "items": {
                            "additionalProperties": False,
                            "properties": {
                                "file_size": {
                                    "maximum": 5000000000000,
                                    "minimum": 1,
                                    "type": "integer",
                                },
                                "media_type": {"maxLength": 255, "minLength": 1, "type": "string"},
                                "name": {"maxLength": 255, "minLength": 1, "type": "string"},
                            },
                            "required": ["name", "file_size", "media_type"],
                            "type": "object",
                        },
                        "type": "array",
                    },
                    "completed": {"nullable": True, "type": "boolean"},
                    "duration": {
                        "format": "int32",
                        "minimum": 1,
                        "nullable": True,
                        "type": "integer",
                    },
                    "links": {
                        "items": {
                            "properties": {
                                "end_index": {"format": "int32", "minimum": 1, "type": "integer"},
                                "start_index": {"format": "int32", "minimum": 0, "type": "integer"},
                                "url": {"type": "string"},
                            },
                            "required": ["start_index", "end_index", "url"],
                            "type": "object",
                        },
                        "type": "array",
                    },
                    "page": {"minimum": 1, "nullable": True, "type": "integer"},
                    "text": {"maxLength": 40000, "minLength": 1, "type": "string"},
                    "text_review_annotation": {
                        "allOf": [
                            {
                                "properties": {
                                    "bounds": {
                                        "items": {
                                            "properties": {
                                                "height": {"minimum": 0, "type": "number"},
                                                "width": {"minimum": 0, "type": "number"},
                                                "x": {"type": "number"},
                                                "y": {"type": "number"},
                                            },
                                            "required": ["x", "y", "width", "height"],
                                            "type": "object",
                                        },
                                        "minItems": 1,
                                        "type": "array",
                                    },
                                    "selection_text": {"nullable": True, "type": "string"},
                                    "suggested_text": {
                                        "maxLength": 3000,
                                        "nullable": True,
                                        "type": "string",
                                    },
                                    "text_review_annotation_type": {
                                        "enum": ["highlight", "insert", "remove", "replace"],
                                        "type": "string",
                                    },
                                },
                                "required": [
                                    "bounds",
                                    "suggested_text",
                                    "selection_text",
                                    "text_review_annotation_type",
                                ],
                                "type": "object",
                            }
                        ]
                    },
                    "timestamp": {
                        "oneOf": [
                            {"format": "HH:MM:SS:FF", "nullable": True, "type": "string"},
                            {"format": "int32", "minimum": 0, "nullable": True, "type": "integer"},
                        ]
                    },
                },
                "required": ["text"],
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "files.create_local_upload": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {
                    "file_size": {"maximum": 5000000000000, "minimum": 1, "type": "integer"},
                    "name": {"maxLength": 255, "minLength": 1, "type": "string"},
                },
                "required": ["name", "file_size"],
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "files.create_remote_upload": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {
                    "name": {"maxLength": 255, "minLength": 1, "type": "string"},
                    "source_url": {"type": "string"},
                },
                "required": ["name", "source_url"],
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "folders.create": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {"name": {"maxLength": 255, "minLength": 1, "type": "string"}},
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "projects.create": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {
                    "name": {"maxLength": 255, "minLength": 1, "type": "string"},
                    "restricted": {"type": "boolean"},
                },
                "required": ["name"],
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "version_stacks.create": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {
                    "file_ids": {
                        "items": {"type": "string"},
                        "maxItems": 10,
                        "minItems": 2,
                        "type": "array",
                        "uniqueItems": True,
                    }
                },
                "required": ["file_ids"],
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "version_stacks.move": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {"parent_id": {"type": "string"}},
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
    "comments.update": {
        "additionalProperties": False,
        "properties": {
            "data": {
                "additionalProperties": False,
                "properties": {
                    "anchor": {
                        "allOf": [
                            {
                                "properties": {
                                    "x": {
                                        "format": "float",
                                        "maximum": 1.0,
                                        "minimum": 0.0,
                                        "type": "number",
                                    },
                                    "y": {
                                        "format": "float",
                                        "maximum": 1.0,
                                        "minimum": 0.0,
                                        "type": "number",
                                    },
                                },
                                "required": ["x", "y"],
                                "type": "object",
                            }
                        ],
                        "nullable": True,
                        "type": "object",
                    },
                    "annotation": {"maxLength": 200000, "nullable": True, "type": "string"},
                    "completed": {"nullable": True, "type": "boolean"},
                    "duration": {"format": "int32", "minimum": 1, "nullable": True, "type": "integer"},
                    "links": {
                        "items": {
                            "properties": {
                                "end_index": {"format": "int32", "minimum": 1, "type": "integer"},
                                "start_index": {"format": "int32", "minimum": 0, "type": "integer"},
                                "url": {"type": "string"},
                            },
                            "required": ["start_index", "end_index", "url"],
                            "type": "object",
                        },
                        "type": "array",
                    },
                    "page": {"minimum": 1, "nullable": True, "type": "integer"},
                    "text": {"maxLength": 40000, "minLength": 1, "type": "string"},
                    "text_review_annotation": {
                        "minProperties": 1,
                        "properties": {
                            "bounds": {
                                "items": {
                                    "properties": {
                                        "height": {"minimum": 0, "type": "number"},
                                        "width": {"minimum": 0, "type": "number"},
                                        "x": {"type": "number"},
                                        "y": {"type": "number"},
                                    },
                                    "required": ["x", "y", "width", "height"],
                                    "type": "object",
                                },
                                "minItems": 1,
                                "type": "array",
                            },
                            "selection_text": {"nullable": True, "type": "string"},
                            "suggested_text": {"maxLength": 3000, "nullable": True, "type": "string"},
                            "text_review_annotation_type": {
                                "enum": ["highlight", "insert", "remove", "replace"],
                                "type": "string",
                            },
                        },
                        "type": "object",
                    },
                    "timestamp": {
                        "oneOf": [
                            {"format": "HH:MM:SS:FF", "nullable": True, "type": "string"},
                            {"format": "int32", "minimum": 0, "nullable": True, "type": "integer"},
                        ]
                    },
                },
                "type": "object",
            }
        },
        "required": ["data"],
        "type": "object",
    },
}
