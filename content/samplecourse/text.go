package samplecourse

// The course's words live here, apart from the code that lays them out, so a
// teacher's correction touches one file. Everything is plain ASCII: the PDF's
// standard fonts cannot show anything else.

// transcriptVTT follows the captions drawn in the video, 3 s per stage, and
// says a little more than the screen has room for so search finds the ideas
// as well as the headings.
const transcriptVTT = `WEBVTT

00:00.000 --> 00:03.000
The water cycle. Step one: evaporation. The sun warms the water in oceans, lakes and rivers, and it rises into the air as invisible water vapour.

00:03.000 --> 00:06.000
Step two: condensation. High in the sky the air is cold, so the vapour cools into tiny droplets that gather as clouds.

00:06.000 --> 00:09.000
Step three: precipitation. When the droplets join and grow heavy, they fall as rain, snow, sleet or hail.

00:09.000 --> 00:12.000
Step four: collection. Water gathers in rivers, lakes, oceans and under the ground, and the cycle begins again.
`

const readingText = `The Journey of a Raindrop

Every drop of rain that lands on your school roof has been on a very long
journey. The water on Earth is not used up. It moves around and around, from
the oceans to the sky and back again. Scientists call this journey the water
cycle.

Evaporation
On a sunny day, the sun warms the surface of oceans, lakes, rivers and even
puddles. Some of the water turns into a gas called water vapour. You cannot
see water vapour, but it is in the air all around you. Plants help too: they
give off water vapour through tiny holes in their leaves. This is called
transpiration.

Condensation
Warm air rises, and the higher it goes, the colder it gets. When water vapour
cools, it turns back into tiny drops of liquid water. Millions of these drops
together make a cloud. You can see condensation at home when drops form on
the outside of a cold glass.

Precipitation
Inside a cloud, the tiny drops bump into each other and join to make bigger
drops. When they become too heavy to float, they fall to the ground. Water
that falls from clouds is called precipitation. It can be rain, snow, sleet
or hail, depending on how cold the air is.

Collection
Rain and melted snow run into streams and rivers, which carry the water back
to lakes and oceans. Some water soaks into the soil and becomes groundwater,
which plants drink through their roots and people reach with wells. Then the
sun warms the water again, and the journey starts over.

Think about it
The water you drink today might once have been part of a cloud over another
country, or even a drink for a dinosaur. Where do you think your next glass
of water has been?
`

// factSheetSummary is the PDF item's searchable text, since the search index
// does not read inside PDFs.
const factSheetSummary = "A one-page fact sheet on the four stages of the water cycle: evaporation, condensation, precipitation and collection, with a simple experiment to try at home and words to remember."

var factSheetBlocks = []pdfBlock{
	{styleTitle, "The Water Cycle"},
	{styleSubtitle, "Fact sheet for grades 4 and 5"},
	{styleHeading, "What is the water cycle?"},
	{styleBody, "The water cycle is the never-ending journey of water between the oceans, the sky and the land. The amount of water on Earth stays almost the same: it keeps changing from liquid to gas and back again, powered by the heat of the sun."},
	{styleHeading, "1. Evaporation"},
	{styleBody, "The sun warms oceans, lakes and rivers. Some of the water turns into an invisible gas called water vapour and rises into the air. Plants add more vapour through their leaves; this is called transpiration."},
	{styleHeading, "2. Condensation"},
	{styleBody, "Air gets colder the higher it rises. When water vapour cools, it changes back into tiny droplets of liquid water. Billions of droplets together form clouds and fog."},
	{styleHeading, "3. Precipitation"},
	{styleBody, "Droplets in a cloud bump together and grow. When they are too heavy to float, they fall as rain. If the air is cold enough, they fall as snow, sleet or hail instead."},
	{styleHeading, "4. Collection"},
	{styleBody, "Fallen water runs into streams, rivers, lakes and oceans, or soaks into the ground as groundwater. From there the sun warms it again and the cycle starts over."},
	{styleHeading, "Try this at home"},
	{styleBody, "Put a little warm water in a clear bowl and cover it tightly with cling film. Place an ice cube on top of the film and wait ten minutes. Water vapour from the bowl condenses on the cold film and drips back down: a tiny water cycle in your kitchen."},
	{styleHeading, "Words to remember"},
	{styleBody, "Evaporation: liquid water turning into water vapour."},
	{styleBody, "Condensation: water vapour cooling into liquid droplets."},
	{styleBody, "Precipitation: water falling from clouds as rain, snow, sleet or hail."},
	{styleBody, "Collection: water gathering in oceans, lakes, rivers and the ground."},
}
