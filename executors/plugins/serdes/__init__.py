"""Kestra's serdes plugin: file format conversions to and from Kestra's ION files.

Every type reads ``from`` (a ``kestra://`` URI of internal storage), converts row by row and
returns Kestra's outputs ``uri`` (the new file) and ``size`` (records converted; also the
``records`` metric). ION is read and written by :mod:`executors.ion` (its docstring has the
value mapping); :mod:`.base` has what the types share (streaming files, cancellation), and
:mod:`.javatext` how Java prints the values Kestra reads from ION. Each module's docstring
lists its types' properties, defaults and the differences from Kestra we chose:

- :mod:`.csv_files`: csv.IonToCsv, csv.CsvToIon (FastCSV's rules, on Python's csv)
- :mod:`.json_files`: json.IonToJson, json.JsonToIon, json.JsonToJsonl
- :mod:`.toon_files`: json.JsonToToon, json.ToonToJson (Kestra's own TOON encoder and parser)
- :mod:`.yaml_files`: yaml.IonToYaml, yaml.YamlToIon, yaml.JsonToYaml, yaml.YamlToJson
- :mod:`.excel_files`: excel.IonToExcel, excel.ExcelToIon (openpyxl)
- :mod:`.avro_files`: avro.IonToAvro, avro.AvroToIon, avro.InferAvroSchemaFromIon (fastavro;
  schema inference in :mod:`.avro_schema`, value conversion in :mod:`.avro_convert`)
- :mod:`.parquet_files`: parquet.IonToParquet, parquet.ParquetToIon (pyarrow)
- :mod:`.xml_files`: xml.IonToXml, xml.XmlToIon (expat)
- :mod:`.markdown_files`: markdown.MarkdownToHtml, markdown.MarkdownToText (markdown-it-py)

Not provided: markdown.HtmlToMarkdown (flexmark's output, which no Python library
reproduces) and protobuf.ProtobufToIon (it reads compiled descriptor files).
"""

from executors.plugins.serdes.avro_files import AvroToIon, InferAvroSchemaFromIon, IonToAvro
from executors.plugins.serdes.csv_files import CsvToIon, IonToCsv
from executors.plugins.serdes.excel_files import ExcelToIon, IonToExcel
from executors.plugins.serdes.json_files import IonToJson, JsonToIon, JsonToJsonl
from executors.plugins.serdes.markdown_files import MarkdownToHtml, MarkdownToText
from executors.plugins.serdes.parquet_files import IonToParquet, ParquetToIon
from executors.plugins.serdes.toon_files import JsonToToon, ToonToJson
from executors.plugins.serdes.xml_files import IonToXml, XmlToIon
from executors.plugins.serdes.yaml_files import IonToYaml, JsonToYaml, YamlToIon, YamlToJson

PLUGINS = [
    IonToCsv,
    CsvToIon,
    IonToJson,
    JsonToIon,
    JsonToJsonl,
    JsonToToon,
    ToonToJson,
    IonToYaml,
    YamlToIon,
    JsonToYaml,
    YamlToJson,
    IonToExcel,
    ExcelToIon,
    IonToAvro,
    AvroToIon,
    InferAvroSchemaFromIon,
    IonToParquet,
    ParquetToIon,
    IonToXml,
    XmlToIon,
    MarkdownToHtml,
    MarkdownToText,
]
