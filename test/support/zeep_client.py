"""An independent SOAP 1.2 client for the interop tests: python-zeep reads the gateway's WSDL,
adds the WS-Addressing headers the WSDL asks for (wsaw:UsingAddressing) and sends one request whose body children come from a file.
Usage: zeep_client.py WSDL_URL OPERATION BODY_XML_FILE   (prints the response root as XML)."""
import sys

import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin

wsdl, operation, body_file = sys.argv[1:4]
history = HistoryPlugin()
client = zeep.Client(wsdl, plugins=[history])
root = etree.parse(body_file).getroot()
attrs = dict(root.attrib)
getattr(client.service, operation)(_value_1=list(root), _attr_1=attrs)
# What zeep sent and received, as XML documents separated by a form feed line.
print(etree.tostring(history.last_sent["envelope"], encoding="unicode"))
print("\f")
print(etree.tostring(history.last_received["envelope"], encoding="unicode"))
