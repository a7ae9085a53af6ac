"""Image validation and conversion, each case built in code."""

import struct
from io import BytesIO

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from lesionflow.contracts import IMAGE_ENCODINGS, load_contract
from lesionflow.errors import ImageRejected, RejectionClass
from lesionflow.images import ImageLimits, check_size, decode_rgb, inspect
from lesionflow.preprocessing import model_input
from lesionflow_local.fault_plan import jpeg_declaring, png_declaring
from tests.image_mutants import (MARKER, XMP_NAMESPACE, carries, every_contract, exif_description, exif_orientation,
                                 icc_profile, lesion, metadata_left_in, metadata_uploads, png_chunk, xmp_packet)
from tests.support import encode, jpeg, png

LIMITS = ImageLimits(max_bytes=5_000_000, max_pixels=4_000_000, min_side=32)
CONTRACT = load_contract("hf-image-classification")


def reason_for(data: bytes, limits: ImageLimits = LIMITS) -> str:
    with pytest.raises(ImageRejected) as rejection:
        inspect(data, limits, "0" * 64)
    return str(rejection.value)


def test_a_jpeg_and_a_png_within_limits_are_accepted_with_their_facts():
    # Given a JPEG and a PNG of reasonable size
    # When they are inspected
    facts = [inspect(data, LIMITS, "f" * 64) for data in (jpeg(640, 480), png(300, 200))]

    # Then their format and dimensions are known
    assert [(f.format, f.width, f.height) for f in facts] == [("JPEG", 640, 480), ("PNG", 300, 200)]


@pytest.mark.parametrize("content", [
    b"just some text",
    b"<!doctype html><html><body>hi</body></html>",
    b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
    bytes(range(256)) * 4,
], ids=["text", "html", "pdf", "random-bytes"])
def test_content_that_is_not_an_image_is_rejected_whatever_its_name(content):
    assert "not a supported image" in reason_for(content)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF", "ICO", "WEBP"])
def test_formats_outside_the_allowlist_are_rejected_even_though_pillow_opens_them(fmt):
    # Given a perfectly valid image in a format Pillow can read but we do not accept
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), fmt)

    # Then it is rejected by its signature
    assert "not a supported image" in reason_for(data)


def test_an_empty_file_is_rejected_from_its_announced_size_before_download():
    with pytest.raises(ImageRejected, match="empty"):
        check_size(0, LIMITS)


def test_a_file_over_the_byte_limit_is_rejected_from_its_announced_size():
    with pytest.raises(ImageRejected, match="more than the limit of 5000000"):
        check_size(5_000_001, LIMITS)


def test_an_image_over_the_pixel_limit_is_rejected():
    assert "more than the limit of 4000000" in reason_for(jpeg(2500, 2000))


@pytest.mark.parametrize("bomb", [png_declaring(100_000, 100_000), jpeg_declaring(60_000, 60_000)],
                         ids=["png", "jpeg"])
def test_decompression_bombs_are_refused_from_the_header(bomb):
    # Given a file of a few hundred bytes that declares billions of pixels
    assert len(bomb) < 2000

    # Then it is rejected without decoding (a decode would need gigabytes)
    assert "pixels" in reason_for(bomb) or "decompression bomb" in reason_for(bomb)


def test_an_image_too_small_to_classify_is_rejected():
    assert "smaller than 32 pixels" in reason_for(png(31, 200))


def test_a_damaged_png_header_is_rejected_with_a_reason():
    data = bytearray(png(64, 64))
    data[16:24] = b"\xff" * 8  # width and height fields garbled; the CRC no longer matches
    assert "cannot be read" in reason_for(bytes(data))


def test_a_truncated_jpeg_is_rejected_when_decoded():
    whole = jpeg(400, 300, quality=95)
    with pytest.raises(ImageRejected, match="truncated"):
        decode_rgb(whole[: len(whole) // 2], "JPEG", (224, 224))


def test_a_truncated_png_is_rejected_when_decoded():
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    whole = encode(noisy, "PNG")
    with pytest.raises(ImageRejected):
        decode_rgb(whole[: len(whole) // 2], "PNG", (224, 224))


def centre(image: Image.Image) -> tuple:
    return image.getpixel((image.width // 2, image.height // 2))


def close(a, b, tolerance=6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def test_a_cmyk_jpeg_is_converted_to_the_right_rgb():
    cmyk = encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red in CMYK
    assert close(centre(decode_rgb(cmyk, "JPEG", (64, 64))), (255, 0, 0), tolerance=12)


def test_a_grayscale_image_becomes_three_equal_channels():
    grey = encode(Image.new("L", (64, 64), 100), "PNG")
    assert centre(decode_rgb(grey, "PNG", (64, 64))) == (100, 100, 100)


SIDES = pytest.mark.parametrize("side", [64, 900], ids=["as-is", "shrunk-first"])


@SIDES
def test_a_16_bit_png_is_scaled_not_clipped_to_white(side):
    # Given a 16-bit grey PNG at about a quarter of full scale
    sixteen = Image.fromarray(np.full((side, side), 16384, dtype=np.uint16))
    data = encode(sixteen, "PNG")

    # Then it decodes to a dark-ish grey, not white
    assert close(centre(decode_rgb(data, "PNG", (64, 64))), (63, 63, 63), tolerance=2)


@SIDES
def test_transparent_pixels_are_composited_so_their_hidden_colour_never_shows(side):
    # Given an RGBA image whose fully transparent pixels hide pure green
    image = Image.new("RGBA", (side, side), (0, 255, 0, 0))
    data = encode(image, "PNG")

    # Then they become the white background
    assert centre(decode_rgb(data, "PNG", (64, 64))) == (255, 255, 255)


@SIDES
def test_a_palette_image_with_a_transparent_index_is_composited(side):
    palette = Image.new("P", (side, side), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)  # index 1 is green
    data = encode(palette, "PNG", transparency=1)
    assert centre(decode_rgb(data, "PNG", (64, 64))) == (255, 255, 255)


def test_exif_orientation_is_applied_before_resizing():
    # Given a landscape JPEG (red left half, blue right half) tagged "rotate 90° clockwise to view"
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    image.paste((0, 0, 255), (40, 0, 80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", quality=95, exif=exif.tobytes())

    # When it is decoded
    upright = decode_rgb(data, "JPEG", (40, 80))

    # Then it is portrait, with the left half (red) now on top
    assert upright.size == (40, 80)
    assert close(upright.getpixel((20, 5)), (255, 0, 0), tolerance=40)
    assert close(upright.getpixel((20, 75)), (0, 0, 255), tolerance=40)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_survives_shrinking_a_large_image(fmt):
    # Given a large landscape image (red left, blue right) tagged "rotate 90 degrees clockwise to view"
    image = Image.new("RGB", (1800, 900), (255, 0, 0))
    image.paste((0, 0, 255), (900, 0, 1800, 900))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(image, fmt, exif=exif.tobytes())

    # When it is decoded for a 224x224 model
    upright = decode_rgb(data, fmt, (224, 224))

    # Then it was shrunk before anything else and is portrait with red on top
    assert upright.width < upright.height <= 900
    assert close(upright.getpixel((upright.width // 2, 10)), (255, 0, 0), tolerance=40)
    assert close(upright.getpixel((upright.width // 2, upright.height - 10)), (0, 0, 255), tolerance=40)


def test_a_progressive_jpeg_is_decoded():
    data = jpeg(300, 200, colour=(10, 200, 30), progressive=True, quality=95)
    assert close(centre(decode_rgb(data, "JPEG", (224, 224))), (10, 200, 30), tolerance=8)


def test_a_multi_frame_png_is_classified_by_its_first_frame():
    # Given an animated PNG whose first frame is red and second blue
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = BytesIO()
    frames[0].save(out, format="PNG", save_all=True, append_images=frames[1:])

    # Then validation counts two frames and decoding gives the first
    assert inspect(out.getvalue(), LIMITS, "0" * 64).frames == 2
    assert centre(decode_rgb(out.getvalue(), "PNG", (64, 64))) == (255, 0, 0)


@pytest.mark.parametrize("size", [(32, 20_000), (20_000, 32)])
def test_a_long_strip_is_shrunk_along_its_length_too(size):
    # Given a strip whose short side is under the model's size (so the usual factor, from the short side, is 1)
    data = png(*size, colour=(16, 32, 48))

    # When decoded for a 224x224 model
    image = decode_rgb(data, "PNG", (224, 224))

    # Then the long side was reduced right after decoding (every later copy would be full size otherwise), and the
    # short side kept
    assert max(image.size) < 2 * 8 * 224 and min(image.size) == 32
    assert image.getpixel((0, 0)) == (16, 32, 48)


def test_a_photo_keeps_its_aspect_when_shrunk():
    image = decode_rgb(png(1800, 900), "PNG", (224, 224))
    assert image.size == (450, 225)


def test_16_bit_grey_is_scaled_exactly_as_255_65535ths():
    # Given every 16-bit value once
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    data = encode(Image.fromarray(values), "PNG")

    # When decoded, Then each becomes value * 255 // 65535 (no clipping to white, no rounding up)
    pixels = np.asarray(decode_rgb(data, "PNG", (256, 256)))[:, :, 0]
    assert np.array_equal(pixels, (values.astype(np.uint32) * 255 // 65535).astype(np.uint8))


def test_a_large_jpeg_is_decoded_at_a_reduced_dct_scale():
    # Given a 2000x1500 JPEG and a 224x224 target
    data = jpeg(2000, 1500)

    # When decoded for the model
    image = decode_rgb(data, "JPEG", (224, 224))

    # Then the decoder never produced the full-size bitmap (draft picked a 1/4 scale, still >= 224)
    assert image.size == (500, 375)


def test_the_model_input_is_a_224_jpeg_as_the_contract_says():
    body = model_input(jpeg(640, 480), "JPEG", CONTRACT)
    with Image.open(BytesIO(body)) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (224, 224), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_the_model_input_carries_no_exif_or_text_from_the_upload(fmt):
    # Given an upload whose metadata names a patient and a place
    exif = Image.Exif()
    exif[0x013B] = "Jane Patient"  # Artist
    exif[0x010E] = "lesion left shoulder, clinic 7"  # ImageDescription
    data = encode(Image.new("RGB", (300, 300), (180, 120, 100)), fmt, exif=exif.tobytes())
    assert b"Jane Patient" in data

    # When it is turned into the model input
    body = model_input(data, fmt, CONTRACT)

    # Then none of that metadata is in the input sent to the model
    with Image.open(BytesIO(body)) as image:
        assert not image.getexif() and "exif" not in image.info
    assert b"Jane Patient" not in body and b"clinic 7" not in body


# --------------------------------------------------------------------------- nothing but pixels reaches the model
UPLOADS = metadata_uploads()
IMAGE_CONTRACTS = [contract for contract in every_contract() if contract.input.encoding in IMAGE_ENCODINGS]


def decoded_pixels(body: bytes) -> bytes:
    with Image.open(BytesIO(body)) as image:
        return image.tobytes()


@pytest.mark.parametrize("contract", IMAGE_CONTRACTS, ids=lambda contract: contract.input.encoding)
@pytest.mark.parametrize("kind", sorted(UPLOADS))
def test_an_image_model_input_carries_the_pixels_and_none_of_the_uploads_metadata(kind, contract):
    # Given an upload whose metadata of this kind names a patient (and the same picture with no metadata at all)
    image_format, data = UPLOADS[kind]
    assert carries(data, MARKER)
    bare = encode(lesion((96, 72)), image_format)

    # When it is turned into a model input that is itself an image file
    body = model_input(data, image_format, contract)

    # Then the file holds no trace of that metadata: not the text, not the container it came in, nothing in info
    assert metadata_left_in(body, contract.input.encoding) == []
    # and its pixels are those of the bare picture: metadata changes nothing (an ICC profile is not applied)
    assert decoded_pixels(body) == decoded_pixels(model_input(bare, image_format, contract))


def test_a_text_chunk_too_long_for_a_jpeg_comment_is_not_copied_into_the_model_input():
    # Given a PNG whose "comment" text chunk is longer than any JPEG comment can be (Pillow used to copy it, and fail)
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 70_000)
    data = encode(lesion((96, 72)), "PNG", pnginfo=info)

    # Then the JPEG model input is made, without it
    body = model_input(data, "PNG", CONTRACT)
    assert metadata_left_in(body, "jpeg") == [] and b"xxxx" not in body


# --------------------------------------------------------------------------------- no image crashes a step
ALL_CONTRACTS = every_contract()


def verdicts(data: bytes) -> set[str]:
    """What Validate and then Preprocess (for every contract) make of ``data``: "classified", or the rejection class;
    any other exception fails the test that calls it."""
    try:
        facts = inspect(data, ImageLimits(), "0" * 64)
    except ImageRejected as rejection:
        return {str(rejection.rejection_class)}
    found = set()
    for contract in ALL_CONTRACTS:
        try:
            model_input(data, facts.format, contract)
            found.add("classified")
        except ImageRejected as rejection:
            found.add(str(rejection.rejection_class))
    return found


def png_inserting(*chunks: bytes, base: bytes | None = None) -> bytes:
    """A valid PNG with ``chunks`` (already framed, CRC and all) right after its IHDR."""
    data = base or encode(lesion((96, 72)), "PNG")
    return data[:33] + b"".join(chunks) + data[33:]


def jpeg_inserting(*segments: bytes) -> bytes:
    """A valid JPEG with ``segments`` (marker, length and payload) right after its SOI."""
    data = encode(lesion((96, 72)), "JPEG")
    return data[:2] + b"".join(segments) + data[2:]


def app(marker: int, payload: bytes, length: int | None = None) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2 if length is None else length) + payload


BAD_METADATA = {
    "garbage eXIf (valid CRC)": lambda: png_inserting(png_chunk(b"eXIf", bytes(range(40)))),
    "eXIf of a TIFF header and nothing": lambda: png_inserting(png_chunk(b"eXIf", b"MM\x00*" + b"\xff" * 36)),
    "broken Raw profile type exif": lambda: png_inserting(png_chunk(
        b"tEXt", b"Raw profile type exif\x00\nexif\n      40\nnot hexadecimal at all")),
    "text chunk named exif": lambda: png_inserting(png_chunk(b"tEXt", b"exif\x00" + MARKER.encode())),
    "text chunk named transparency": lambda: png_inserting(png_chunk(b"tEXt", b"transparency\x00x")),
    "text chunk named icc_profile": lambda: png_inserting(png_chunk(b"iTXt", b"icc_profile\x00\x00\x00\x00\x00x")),
    "tRNS longer than the palette": lambda: png_inserting(png_chunk(b"tRNS", b"\x00" * 200), base=encode(
        lesion((96, 72)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")[:-12]
        + png_chunk(b"IEND", b"")),
    "truncated APP1 Exif": lambda: jpeg_inserting(app(0xE1, b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00")),
    "APP1 Exif declaring more than it holds": lambda: jpeg_inserting(app(0xE1, exif_description()[:30])
                                                                     + app(0xFE, b"x" * 10)),
    "APP2 ICC of noise": lambda: jpeg_inserting(app(0xE2, b"ICC_PROFILE\x00\x01\x01" + bytes(range(30)))),
    "APP2 ICC numbered 0 of 0": lambda: jpeg_inserting(app(0xE2, b"ICC_PROFILE\x00\x00\x00" + icc_profile())),
    "APP2 MPF of noise": lambda: jpeg_inserting(app(0xE2, b"MPF\x00" + b"MM\x00*\x00\x00\x00\x08" + bytes(30))),
    "broken XMP orientation": lambda: jpeg_inserting(app(0xE1, XMP_NAMESPACE.encode() + b"\x00"
                                                         + xmp_packet(orientation="9"))),
    "iCCP that does not inflate": lambda: png_inserting(png_chunk(b"iCCP", b"icc\x00\x00" + bytes(range(40)))),
}


@pytest.mark.parametrize("build", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_malformed_metadata_never_crashes_validate_or_preprocess(build):
    # Given an otherwise valid image whose metadata is malformed
    data = build()

    # When Validate and Preprocess (every contract) run, Then each ends classified or rejected as damaged
    assert verdicts(data) <= {"classified", "damaged"}


@pytest.mark.parametrize("build", [v for k, v in BAD_METADATA.items() if k != "iCCP that does not inflate"],
                         ids=[k for k in BAD_METADATA if k != "iCCP that does not inflate"])
def test_metadata_pillow_keeps_but_cannot_read_is_ignored_and_the_pixels_classified(build):
    assert verdicts(build()) == {"classified"}


ORIENTATIONS = {
    "0": exif_orientation(struct.pack("<H", 0)),
    "9": exif_orientation(struct.pack("<H", 9)),
    "65535": exif_orientation(struct.pack("<H", 65535)),
    "text": exif_orientation(b"6\x00", kind=2, count=2),
    "bytes": exif_orientation(b"\x06\x00", kind=7, count=2),
    "negative": exif_orientation(struct.pack("<h", -6), kind=8),
    "bad type": exif_orientation(b"\x06\x00", kind=99),
}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("exif", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_an_invalid_orientation_counts_as_upright_as_it_stands(exif, fmt):
    # Given a landscape image (red left, blue right) whose EXIF orientation is no valid value
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    image.paste((0, 0, 255), (40, 0, 80, 40))
    data = encode(image, fmt, exif=exif)

    # When it is decoded
    decoded = decode_rgb(data, fmt, (80, 40))

    # Then it is taken as it stands (orientation 1): still landscape, red on the left
    assert decoded.size == (80, 40)
    assert close(decoded.getpixel((5, 20)), (255, 0, 0), tolerance=40)
    assert verdicts(data) == {"classified"}


def scan_of(data: bytes) -> tuple[int, int]:
    """Where a baseline JPEG's entropy-coded data starts and ends."""
    start = data.index(b"\xff\xda")
    return start + 2 + struct.unpack(">H", data[start + 2:start + 4])[0], len(data) - 2


def test_a_jpeg_whose_scan_data_is_corrupt_but_complete_is_classified_on_what_it_decodes_to():
    # Given a JPEG with bytes of its entropy-coded data overwritten (no marker made, nothing cut): JPEG has no checksum
    whole = encode(lesion((96, 72)), "JPEG", quality=90)
    data = bytearray(whole)
    start, end = scan_of(whole)
    for at in range(start + 40, end - 40, 211):
        data[at] = 0x5A

    # Then the decoder cannot tell, and neither can the pipeline: other pixels, and they are classified
    assert decode_rgb(bytes(data), "JPEG", (96, 72)).tobytes() != decode_rgb(whole, "JPEG", (96, 72)).tobytes()
    assert verdicts(bytes(data)) == {"classified"}
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # while a file that ends early is still refused:
    assert verdicts(bytes(data[: len(data) // 2])) == {"damaged"}


def test_a_jpeg_whose_scan_data_the_decoder_gives_up_on_is_rejected_as_damaged():
    # Given a JPEG whose entropy-coded data holds a marker that cannot be there (a second SOI)
    data = encode(lesion((96, 72)), "JPEG", quality=90)
    start, _ = scan_of(data)
    broken = data[:start + 50] + b"\xff\xd8" + data[start + 50:]

    # Then Preprocess rejects it as damaged, with the exception's name and nothing of the file
    with pytest.raises(ImageRejected) as rejection:
        model_input(broken, "JPEG", CONTRACT)
    assert rejection.value.rejection_class == RejectionClass.DAMAGED
    assert str(rejection.value) == "the image data is damaged or truncated (OSError)"
