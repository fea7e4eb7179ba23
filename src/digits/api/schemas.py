"""Pydantic schemas of every request and response, for the OpenAPI document at /docs.

The prediction routes parse bodies with orjson and check them with numpy (inputs.py):
validating 784 floats through pydantic costs more than the model call itself (measured:
about 25-45 us vs 6-26 us for orjson on a 28x28 body, before the numpy conversion).
These classes are the documented contract; small responses are built from them directly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Image28 = list[list[float]]


class PredictRequest(BaseModel):
    """JSON body of POST /predict: `pixels` or `image` (exactly one)."""

    pixels: Image28 | list[Image28] | None = Field(
        None, description="one 28x28 image or a list of them; values 0..1 or 0..255, ink bright on black "
                          "(MNIST style); used as given, not re-prepared")
    image: str | list[str] | None = Field(
        None, description="base64 of an image file (PNG, JPEG, ...; a data: URL works), or a list of them; "
                          "goes through the preprocessing path (any size, either polarity)")
    mode: Literal["auto", "digit", "number"] | None = Field(
        None, description="images only: one digit, a whole number, or auto (the default: a number when several "
                          "digits are found); overrides the query parameter")
    include_input: bool | None = Field(None, description="also return the 28x28 the model saw")


class TopClass(BaseModel):
    digit: int = Field(description="class index")
    label: str = Field(description="class name")
    probability: float


class DigitRead(BaseModel):
    """One digit of a reading (the only one for a digit, left to right for a number)."""

    digit: int = Field(description="class index (for MNIST models, the digit)")
    label: str = Field(description="class name")
    confidence: float = Field(description="calibrated probability of the predicted class")
    not_a_digit: bool = Field(description="confidence below the not-a-digit threshold: this piece is not a digit")
    uncertain: bool = Field(description="a digit whose confidence is below DIGITS_UNCERTAIN_BELOW")
    box: list[int] | None = Field(None, description="pictures: top, left, bottom, right of the digit's ink")
    line: int = Field(0, description="pictures: the line of writing it stands in, 0 the top one")
    mark: str = Field("", description="pictures, in a number: a decimal point, comma, colon, minus sign, hyphen, "
                                      "plus sign, a date's slash or an opening parenthesis written just before it "
                                      "('.', ',', ':', '-', '+', '/', '('), a space after a gap of a digit's height, "
                                      "else ''")
    after: str = Field("", description="pictures, in a number: a closing parenthesis or a percent sign written just "
                                       "after it (')', '%'), else ''")
    probabilities: list[float] = Field(description="one probability per class")
    top3: list[TopClass]
    input: list[list[int]] | None = Field(None, description="with include_input: the 28x28 the model saw, 0..255")


class Reading(BaseModel):
    """One picture (or 28x28 `pixels` image) read: the same fields as `digits predict --json` and `digits.read`."""

    kind: Literal["digit", "number", "not_a_digit", "no_ink"] = Field(
        description="one digit; a whole number read left to right; ink that is not a digit; or a blank picture")
    ink_found: bool = Field(description="false for a blank or noise-only picture (kind no_ink)")
    digit: int | None = Field(description="kind digit: the class index (null without ink, or for a number)")
    label: str | None = Field(description="kind digit: the class name")
    number: str | None = Field(description="kind number: the digits left to right, '?' for a piece that is not a "
                                           "digit, a line break between lines of writing (top to bottom), a decimal "
                                           "point, comma or colon where one is written between digits ('12:30'), a "
                                           "minus or plus "
                                           "sign before the first digit or a hyphen or plus between two ('-42', "
                                           "'+44', '555-1234'), a percent sign after the last digit ('42%'), "
                                           "parentheses around digits ('(555) 123'), a date's two slashes "
                                           "('12/05/2026'), a space between numbers written apart on one line ('3 7')")
    confidence: float = Field(description="a digit's top probability; a number's: the product of its digits'")
    uncertain: bool = Field(description="a digit or number whose confidence is below DIGITS_UNCERTAIN_BELOW, or a "
                                        "number holding a piece that is not a digit")
    inverted: bool = Field(description="pictures: dark ink on a light ground")
    box: list[int] | None = Field(description="pictures: top, left, bottom, right of the ink read")
    probabilities: list[float] | None = Field(description="one piece (digit or not_a_digit): one probability per class")
    top3: list[TopClass] | None = Field(description="one piece (digit or not_a_digit): the three likeliest classes")
    digits: list[DigitRead] = Field(description="each digit read, left to right (line by line, top to bottom)")
    input: list[list[int]] | None = Field(None, description="with include_input, no ink: the 28x28 the model saw")
    filename: str | None = Field(None, description="pictures: the file's name (or image[i], upload)")


class PredictResponse(BaseModel):
    model: str
    version: str
    predictions: list[Reading]


class ErrorDetail(BaseModel):
    detail: str | list


class ProtocolError(BaseModel):
    error: str


class ModelInfo(BaseModel):
    name: str
    version: str
    backend: str
    class_names: list[str]
    source: str
    test_accuracy: float | None
    uncertain_below: float
    max_batch: int
    max_body_bytes: int


class Health(BaseModel):
    status: Literal["ok", "loading"]


# ------------------------------------------------------------ Open Inference Protocol (KServe V2)


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2RequestInput(BaseModel):
    name: str = Field(description="'images'")
    shape: list[int] = Field(description="[N, 28, 28] or [N, 28, 28, 1]")
    datatype: str = Field(description="FP32 (0..1), FP64, FP16 or UINT8 (0..255)")
    parameters: dict | None = Field(None, description="binary_data_size when the data follows the JSON header")
    data: list | None = Field(None, description="flat or nested values (absent with binary data)")


class V2RequestOutput(BaseModel):
    name: str = Field(description="'probabilities'")
    parameters: dict | None = Field(None, description="binary_data (bool), classification (top-k count)")


class V2InferRequest(BaseModel):
    id: str | None = None
    parameters: dict | None = Field(None, description="binary_data_output (bool)")
    inputs: list[V2RequestInput]
    outputs: list[V2RequestOutput] | None = None


class V2ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict | None = None
    data: list | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2ResponseOutput]


# ------------------------------------------------------------ TensorFlow Serving REST API


class TFPredictRequest(BaseModel):
    signature_name: str | None = Field(None, description="'serving_default' (the only signature)")
    instances: list | None = Field(None, description="row format: a list of 28x28 images "
                                                     "(or of {'images': 28x28})")
    inputs: list | dict | None = Field(None, description="columnar format: [N, 28, 28] (or {'images': ...})")


class TFPredictResponse(BaseModel):
    predictions: list[list[float]] | None = None
    outputs: list[list[float]] | None = None


def inline_schema(model: type[BaseModel]) -> dict:
    """`model`'s JSON schema with its nested definitions inlined (for `openapi_extra` request bodies,
    where `#/$defs/...` references would not resolve inside the OpenAPI document)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
